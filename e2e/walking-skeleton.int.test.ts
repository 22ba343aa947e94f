import { randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishUplink, tbms100Payload } from '../ingest/simulator/chirpstack-sim.js';
import { loadConfig } from '../lib/config.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTenant, eventually, type TestTenant } from '../lib/testing/fixtures.js';
import { startPipeline, type Pipeline } from './pipeline.js';
import type { UplinkRecord } from '../schemas/avro/records.js';

/**
 * The walking skeleton, through the real services: a ChirpStack-format uplink on MQTT -> ingest bridge (Avro
 * on Kafka, keyed by DevEUI) -> occupancy processor -> TimescaleDB -> GET on the API. Each run has its own
 * topics, consumer group, MQTT client id and tenant, so it never sees another run's data.
 */
const config = loadConfig();
const logger = createLogger('e2e', 'warn');
const run = randomUUID().slice(0, 8);

let tenant: TestTenant;
let otherTenant: TestTenant;
let pipeline: Pipeline;
let publisher: MqttClient;
let fCnt = 1;

async function getSpace(apiKey: string, spaceId: string) {
  const response = await fetch(`http://127.0.0.1:${pipeline.apiPort}/api/v6/spaces/${spaceId}`, {
    headers: { 'x-api-key': apiKey },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function sendReading(occupied: boolean, time = new Date()) {
  return publishUplink(publisher, {
    devEui: tenant.devEui,
    fCnt: fCnt++,
    fPort: 102,
    payload: tbms100Payload(occupied),
    time,
  });
}

beforeAll(async () => {
  [tenant, otherTenant] = await Promise.all([createTestTenant(), createTestTenant()]);
  pipeline = await startPipeline(run, logger);
  publisher = await mqtt.connectAsync(config.mqtt.url, { clientId: `e2e-sim-${run}` });
});

afterAll(async () => {
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe('one uplink end to end', () => {
  it('two occupied readings published on MQTT (the debounce) become the space state served by the API', async () => {
    const sentAt = new Date(Date.now() - 2_000);
    const confirmedAt = new Date(sentAt.getTime() + 1_000);
    await sendReading(true, sentAt);
    // One reading confirms nothing (default policy: two matching readings within 10 s).
    await eventually(
      () => pipeline.pipelinePool.query('SELECT 1 FROM uplinks WHERE tenant_id = $1', [tenant.tenantId]),
      (r) => r.rowCount === 1,
    );
    expect((await getSpace(tenant.apiKey, tenant.spaceId)).body['state']).toBe('unknown');
    await sendReading(true, confirmedAt);
    const { body } = await eventually(
      () => getSpace(tenant.apiKey, tenant.spaceId),
      (r) => r.status === 200 && r.body['state'] === 'occupied',
    );
    expect(body).toMatchObject({
      id: tenant.spaceId,
      code: 'A-01',
      state: 'occupied',
      stateSince: sentAt.toISOString(),
      lastEventTime: confirmedAt.toISOString(),
    });
  });

  it('the record on Kafka is Avro in the Confluent wire format, keyed by DevEUI, readable by a fresh registry client', async () => {
    const consumer = createKafka(config.kafka, logger, `e2e-reader-${run}`).consumer({
      groupId: `e2e-reader-${run}`,
    });
    const seen: Array<{ key: string; value: Buffer }> = [];
    await consumer.connect();
    await consumer.subscribe({ topic: pipeline.topics.uplinks, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key && message.value) seen.push({ key: message.key.toString(), value: message.value });
      },
    });
    try {
      await eventually(
        async () => seen.length,
        (n) => n >= 1,
      );
    } finally {
      await consumer.disconnect();
    }
    const first = seen[0]!;
    expect(first.key).toBe(tenant.devEui);
    expect(first.value[0]).toBe(0); // Confluent magic byte, then a 4-byte schema id
    const fresh = new SchemaRegistry({ host: config.schemaRegistry.url });
    const decoded = (await fresh.decode(first.value)) as UplinkRecord;
    expect(decoded).toMatchObject({
      tenantId: tenant.tenantId,
      devEui: tenant.devEui,
      spaceId: tenant.spaceId,
      source: 'MQTT',
      fPort: 102,
      codec: 'browan-tbms100',
      occupied: true,
      batteryVolts: 3.6,
      temperatureC: 21,
      rssi: -97,
    });
    expect(Buffer.from(decoded.payload)).toEqual(tbms100Payload(true));
  });

  it('another tenant cannot read the space (404), and no key gets 401', async () => {
    expect((await getSpace(otherTenant.apiKey, tenant.spaceId)).status).toBe(404);
    const anonymous = await fetch(`http://127.0.0.1:${pipeline.apiPort}/api/v6/spaces/${tenant.spaceId}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
  });

  it('with the processor stopped the state does not move; restarted, it resumes from the offset stored in PostgreSQL', async () => {
    await pipeline.stopProcessor();
    const now = Date.now();
    await sendReading(false, new Date(now - 1_000));
    await sendReading(false, new Date(now));
    // Give a (broken) pipeline every chance to change the state: it must not, as no processor runs.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await getSpace(tenant.apiKey, tenant.spaceId)).body['state']).toBe('occupied');
    const processor = await pipeline.startProcessor();
    const { body } = await eventually(
      () => getSpace(tenant.apiKey, tenant.spaceId),
      (r) => r.body['state'] === 'free',
    );
    expect(body['state']).toBe('free');
    // Only the two new records were applied after the restart: the first two were stored before the stop.
    expect(processor.applied()).toBe(2);
    const stored = await pipeline.pipelinePool.query<{ n: string }>(
      'SELECT sum(next_offset) AS n FROM processor_offsets WHERE group_id = $1',
      [`occupancy-${pipeline.run}`],
    );
    expect(Number(stored.rows[0]!.n)).toBe(4);
    // Exactly two changes, each once: unknown -> occupied, occupied -> free.
    const changes = await pipeline.pipelinePool.query<{ previous_state: string; state: string }>(
      'SELECT previous_state, state FROM occupancy_changes WHERE tenant_id = $1 ORDER BY time',
      [tenant.tenantId],
    );
    expect(changes.rows).toEqual([
      { previous_state: 'unknown', state: 'occupied' },
      { previous_state: 'occupied', state: 'free' },
    ]);
  });
});
