import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { DeadLetterRecord } from '../../schemas/avro/records.js';
import { loadConfig } from '../config.js';
import { isPlatformError } from '../errors.js';
import { createSchemaRegistry, decodeAvro, registerValueSchema } from './avro.js';

const config = loadConfig();

const record: DeadLetterRecord = {
  eventId: randomUUID(),
  tenantId: null,
  devEui: '70B3D57ED0050001',
  source: 'HTTP',
  errorCode: 'PAYLOAD_INVALID',
  reason: 'event body is not valid JSON',
  receivedAt: 1_733_000_000_123,
  contentType: 'application/json',
  origin: '/chirpstack/events?event=up',
  original: Buffer.from('{not json'),
};

describe('registerValueSchema', () => {
  it('encodes synchronously the same Confluent-framed bytes the registry client writes, readable by a fresh client', async () => {
    const registry = createSchemaRegistry(config.schemaRegistry);
    const serde = await registerValueSchema<DeadLetterRecord>(
      registry,
      `test-avro-${randomUUID()}`,
      readAvroSchema('dead-letter'),
    );
    const bytes = serde.encodeSync(record);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(serde.schemaId);
    expect(bytes.equals(await registry.encode(serde.schemaId, record))).toBe(true);
    expect((await serde.encode(record)).equals(bytes)).toBe(true);
    expect(await decodeAvro(createSchemaRegistry(config.schemaRegistry), bytes)).toEqual(record);
  });

  it('refuses a value that does not match the schema with ENCODE_FAILED, not retriable', async () => {
    const registry = createSchemaRegistry(config.schemaRegistry);
    const topic = `test-avro-${randomUUID()}`;
    const serde = await registerValueSchema<DeadLetterRecord>(registry, topic, readAvroSchema('dead-letter'));
    const invalid = { ...record, receivedAt: 'yesterday' } as unknown as DeadLetterRecord;
    let thrown: unknown;
    try {
      serde.encodeSync(invalid);
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'ENCODE_FAILED')).toBe(true);
    expect(thrown).toMatchObject({ retriable: false, message: expect.stringContaining(`${topic}-value`) });
    await expect(serde.encode(invalid)).rejects.toMatchObject({ code: 'ENCODE_FAILED' });
  });
});
