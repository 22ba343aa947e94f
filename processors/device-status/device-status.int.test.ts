import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { createSchemaRegistry, registerValueSchema, type AvroSerde } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { DeviceStatusRecord } from '../../schemas/avro/records.js';
import type { Processor } from '../runtime/processor.js';
import { startDeviceStatus } from './run.js';

/**
 * The device status processor on the real stack (mock Kafka, Schema Registry, PostgreSQL) with its own two
 * tenants, topics and groups: status records in, exact device_status rows out, each in its own tenant (read back
 * through RLS as the API role); invalid and undecodable records dead-lettered with their codes; a second consumer
 * group replaying the whole topic writes nothing.
 */
const config = loadConfig();
const logger = createLogger('device-status-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const H = 3_600_000;

const run = randomUUID().slice(0, 8);
const topics = { deviceStatus: `test-device-status-${run}`, deadLetter: `test-device-status-dlq-${run}` };
const options = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 };
let migrate: pg.Client;
let pipelinePool: Pool;
let apiPool: Pool;
let kafka: Kafka;
let producer: Producer;
let serde: AvroSerde<DeviceStatusRecord>;
const processors: Processor[] = [];
let tenantA: string;
let tenantB: string;
const devA1 = randomDevEui();
const devA2 = randomDevEui();
const devB1 = randomDevEui();

function status(
  tenantId: string,
  devEui: string,
  time: number,
  over: Partial<DeviceStatusRecord> = {},
): DeviceStatusRecord {
  return {
    eventId: randomUUID(),
    tenantId,
    devEui,
    time,
    receivedAt: time + 40,
    source: 'MQTT',
    applicationId: 'app',
    margin: 10,
    externalPowerSource: false,
    batteryLevel: 80,
    ...over,
  };
}

async function publish(values: Array<{ key: string; value: Buffer }>): Promise<void> {
  await producer.send({ topic: topics.deviceStatus, acks: -1, messages: values });
}

/** A tenant's device_status rows as the API role sees them (RLS, app.tenant_id set), times relative to T0 in h. */
async function rowsOf(tenantId: string) {
  const rows = await withTenant(apiPool, tenantId, async (client) => {
    const result = await client.query<{
      tenant_id: string;
      dev_eui: string;
      h: string;
      battery_volts: number | null;
      battery_percent: number | null;
      rssi: number | null;
      snr: number | null;
      temperature_c: number | null;
      margin: number | null;
      external_power: boolean | null;
      seen_h: string;
    }>(
      `SELECT tenant_id, dev_eui, (extract(epoch FROM time) * 1000 - $1) / $2 AS h, battery_volts,
              battery_percent, rssi, snr, temperature_c, margin, external_power,
              (extract(epoch FROM last_seen_at) * 1000 - $1) / $2 AS seen_h
         FROM device_status ORDER BY dev_eui, time`,
      [T0, H],
    );
    return result.rows;
  });
  return rows.map((r) => ({ ...r, h: Number(r.h), seen_h: Number(r.seen_h) }));
}

const row = (tenantId: string, devEui: string, h: number, over: object = {}) => ({
  tenant_id: tenantId,
  dev_eui: devEui,
  h,
  battery_volts: null,
  battery_percent: 80,
  rssi: null,
  snr: null,
  temperature_c: null,
  margin: 10,
  external_power: false,
  seen_h: h,
  ...over,
});

async function startGroup(groupId: string): Promise<Processor> {
  const processor = await startDeviceStatus({
    kafka,
    registry,
    pipelinePool,
    topics,
    groupId,
    logger,
    options,
  });
  processors.push(processor);
  return processor;
}

/**
 * The distinct error codes on the dead-letter topic once `expected` distinct ones arrived. Dead letters are at
 * least once (processors/runtime/processor.ts): a chunk handled again (a retry, a rebalance) sends them again.
 */
async function deadLetterCodes(expected: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `dlq-reader-${run}` });
  const codes: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: topics.deadLetter, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => void codes.push(message.headers?.['error-code']?.toString() ?? ''),
  });
  try {
    const distinct = () => [...new Set(codes)].sort();
    await eventually(
      async () => distinct().length,
      (n) => n >= expected,
    );
    return distinct();
  } finally {
    await consumer.disconnect();
  }
}

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  const tenant = async (slug: string) =>
    (
      await migrate.query<{ id: string }>('INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id', [
        slug,
      ])
    ).rows[0]!.id;
  tenantA = await tenant(`device-status-a-${run}`);
  tenantB = await tenant(`device-status-b-${run}`);
  pipelinePool = createPool(config.postgres.pipelineUrl, 'device-status-int', 4);
  apiPool = createPool(config.postgres.apiUrl, 'device-status-int-api', 2);
  await createTestTopic(config.kafka.controlPort, topics.deviceStatus, 3);
  await createTestTopic(config.kafka.controlPort, topics.deadLetter, 1);
  serde = await registerValueSchema<DeviceStatusRecord>(
    registry,
    topics.deviceStatus,
    readAvroSchema('device-status'),
  );
  kafka = createKafka(config.kafka, logger, `device-status-${run}`);
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
});

afterAll(async () => {
  for (const processor of processors) await processor.stop();
  await producer?.disconnect();
  await pipelinePool?.end();
  await apiPool?.end();
  await migrate?.end();
});

describe('device status processor', () => {
  it('writes one row per status event in its tenant, dead-letters bad records, and a replay writes nothing', async () => {
    const valid = [
      status(tenantA, devA1, T0, { batteryLevel: 80 }),
      status(tenantA, devA1, T0 + H, { batteryLevel: null, margin: 5 }),
      status(tenantA, devA2, T0, { externalPowerSource: true, batteryLevel: null, margin: -3 }),
      // The same answer again by another integration (another event id, same device and time): first one wins.
      status(tenantA, devA1, T0, { batteryLevel: 79, margin: 9, source: 'HTTP' }),
      status(tenantB, devB1, T0 + 2 * H, { batteryLevel: 50.5, margin: 20 }),
    ];
    const messages = [];
    for (const r of valid) messages.push({ key: r.devEui, value: await serde.encode(r) });
    messages.push({
      key: devA2,
      value: await serde.encode(status(tenantA, devA2, T0 + 3 * H, { batteryLevel: 150 })),
    });
    messages.push({ key: devA1, value: Buffer.from('not avro') });

    const first = await startGroup(`device-status-${run}`);
    await publish(messages);
    await eventually(
      async () => first.applied(),
      (n) => n === valid.length,
    );
    expect(await deadLetterCodes(2)).toEqual(['DECODE_FAILED', 'PAYLOAD_INVALID']);

    const expectedA = [
      row(tenantA, devA1, 0),
      row(tenantA, devA1, 1, { battery_percent: null, margin: 5 }),
      row(tenantA, devA2, 0, { battery_percent: null, margin: -3, external_power: true }),
    ].sort((a, b) => a.dev_eui.localeCompare(b.dev_eui) || a.h - b.h);
    const expectedB = [row(tenantB, devB1, 2, { battery_percent: 50.5, margin: 20 })];
    expect(await rowsOf(tenantA)).toEqual(expectedA);
    expect(await rowsOf(tenantB)).toEqual(expectedB);

    // Replay: a second group reads the topic from the start and applies every valid record again.
    const replay = await startGroup(`device-status-replay-${run}`);
    await eventually(
      async () => replay.applied(),
      (n) => n === valid.length,
    );
    expect(await rowsOf(tenantA)).toEqual(expectedA);
    expect(await rowsOf(tenantB)).toEqual(expectedB);
    const { rows } = await migrate.query<{ n: string }>(
      'SELECT count(*) AS n FROM device_status WHERE tenant_id = ANY($1::uuid[])',
      [[tenantA, tenantB]],
    );
    expect(Number(rows[0]!.n)).toBe(4);
  });
});
