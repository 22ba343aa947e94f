import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import {
  createSchemaRegistry,
  decodeAvro,
  registerValueSchema,
  type AvroSerde,
} from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic, kafkaControl } from '../../lib/testing/kafka-control.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { LivenessAlertRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { startLiveness, type Liveness } from './run.js';

/**
 * The liveness processor on the real stack (mock Kafka, PostgreSQL) with its own tenant, topics and group and a
 * clock the test moves. The sensor promises an uplink every 60 s (sensor_devices.expected_uplink_interval_s), so
 * it alerts after 90 s of silence (interval + half) and clears after 2 frames; its gateway alerts after 10 min.
 */
const config = loadConfig();
const logger = createLogger('liveness-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const S = 1_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

let migrate: pg.Client;
let pool: Pool;
let kafka: Kafka;
let producer: Producer;
let serde: AvroSerde<UplinkRecord>;
let liveness: Liveness;
let clock = T0;
let fCnt = 0;
const run = randomUUID().slice(0, 8);
const topics = {
  uplinks: `test-liveness-uplinks-${run}`,
  livenessAlerts: `test-liveness-alerts-${run}`,
  deadLetter: `test-liveness-dlq-${run}`,
};
let tenantId: string;
const devEui = randomDevEui();
const gwEui = randomDevEui();

async function hear(atS: number, eui = devEui): Promise<void> {
  const before = liveness.applied();
  fCnt++;
  const record: UplinkRecord = {
    eventId: randomUUID(),
    tenantId,
    devEui: eui,
    spaceId: null,
    time: T0 + atS * S,
    receivedAt: T0 + atS * S + 50,
    source: 'MQTT',
    applicationId: 'app',
    fCnt,
    fPort: 102,
    codec: 'browan-tbms100',
    occupied: true,
    batteryVolts: 3.6,
    temperatureC: 20,
    rssi: -90,
    snr: 7,
    gatewayIds: [gwEui.toLowerCase()],
    payload: Buffer.from([1]),
    frameType: null,
    batteryStatus: null,
  };
  await producer.send({
    topic: topics.uplinks,
    acks: -1,
    messages: [{ key: eui, value: await serde.encode(record) }],
  });
  await eventually(
    async () => liveness.applied(),
    (n) => n === before + 1,
  );
}

/** The last seen times the API reads (sensor_devices, gateways), epoch ms. */
async function lastSeen(): Promise<{ device: number | null; gateway: number | null }> {
  const { rows } = await pool.query<{ device: Date | null; gateway: Date | null }>(
    `SELECT (SELECT last_seen_at FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2) AS device,
            (SELECT last_seen_at FROM gateways WHERE tenant_id = $1 AND gw_eui = $3) AS gateway`,
    [tenantId, devEui, gwEui],
  );
  return { device: rows[0]!.device?.getTime() ?? null, gateway: rows[0]!.gateway?.getTime() ?? null };
}

/**
 * One tick at `atS`, with only this test's tenant's alerts: the tick serves every tenant, and earlier runs on the
 * same database leave entities due at the same (fixed) test times.
 */
async function tickAt(atS: number) {
  clock = T0 + atS * S;
  const tick = await liveness.tickOnce();
  return { ...tick, alerts: tick.alerts.filter((a) => a.tenantId === tenantId) };
}

async function alerts() {
  const { rows } = await pool.query<{
    kind: string;
    entity_id: string;
    raised_s: number;
    cleared_s: number | null;
  }>(
    `SELECT kind, entity_id, (extract(epoch FROM raised_at) * 1000 - $2) / 1000 AS raised_s,
            (extract(epoch FROM cleared_at) * 1000 - $2) / 1000 AS cleared_s
       FROM liveness_alerts WHERE tenant_id = $1 ORDER BY raised_at, kind`,
    [tenantId, T0],
  );
  return rows.map((r) => ({
    ...r,
    raised_s: Number(r.raised_s),
    cleared_s: r.cleared_s === null ? null : Number(r.cleared_s),
  }));
}

async function outboxStates(): Promise<string[]> {
  const { rows } = await pool.query<{ value: Buffer }>(
    'SELECT value FROM outbox WHERE tenant_id = $1 AND topic = $2 ORDER BY seq',
    [tenantId, topics.livenessAlerts],
  );
  const states: string[] = [];
  for (const r of rows) {
    const alert = await decodeAvro<LivenessAlertRecord>(registry, r.value);
    states.push(`${alert.kind}:${alert.state}@${(alert.time - T0) / S}`);
  }
  return states;
}

/** Reads the alerts topic from the beginning until `expected` records arrived. */
async function readTopic(expected: number): Promise<LivenessAlertRecord[]> {
  const consumer = kafka.consumer({ groupId: `reader-${run}-${randomUUID().slice(0, 4)}` });
  const seen: LivenessAlertRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: topics.livenessAlerts, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value) seen.push(await decodeAvro<LivenessAlertRecord>(registry, message.value));
    },
  });
  try {
    await eventually(
      async () => seen.length,
      (n) => n >= expected,
    );
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  pool = createPool(config.postgres.pipelineUrl, 'liveness-int', 4);
  tenantId = (
    await migrate.query<{ id: string }>('INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id', [
      `liveness-${run}`,
    ])
  ).rows[0]!.id;
  await migrate.query(
    `INSERT INTO sensor_devices (tenant_id, dev_eui, codec, expected_uplink_interval_s)
     VALUES ($1, $2, 'browan-tbms100', 60)`,
    [tenantId, devEui],
  );
  await migrate.query('INSERT INTO gateways (tenant_id, gw_eui, name) VALUES ($1, $2, $3)', [
    tenantId,
    gwEui,
    'Gateway',
  ]);
  for (const topic of Object.values(topics)) await createTestTopic(config.kafka.controlPort, topic, 1);
  serde = await registerValueSchema<UplinkRecord>(registry, topics.uplinks, readAvroSchema('uplink'));
  kafka = createKafka(config.kafka, logger, `liveness-${run}`);
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  liveness = await startLiveness({
    kafka,
    registry,
    pipelinePool: pool,
    topics,
    groupId: `liveness-${run}`,
    logger,
    // Ticks only when the test calls tickOnce (the first, at start, finds nothing).
    tick: { everyMs: 3_600_000, maxItems: 100 },
    deviceIntervalMs: 15 * 60_000,
    gatewaySilentMinutes: 10,
    now: () => clock,
    options: { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 },
    // The first tick (at start, clock T0; the test's first uplink may still be in flight) opens the gate, and
    // ticks raise from T0 + 30 s.
    raiseGate: { maxLag: 10, settleMs: 30_000 },
  });
});

afterAll(async () => {
  await liveness?.stop();
  await producer?.disconnect();
  await pool?.end();
  await migrate?.end();
});

describe('liveness processor', () => {
  it('raises one alert for a device silent past its interval, does not spam while it flaps, clears when heard again', async () => {
    await hear(0);
    expect(await lastSeen()).toEqual({ device: T0, gateway: T0 });
    expect((await tickAt(89)).alerts).toEqual([]);
    const raised = await tickAt(91);
    expect(raised.alerts.map((a) => [a.kind, a.state, (a.time - T0) / S])).toEqual([
      ['device', 'raised', 90],
    ]);
    expect(raised.alerts[0]).toMatchObject({ devEui, entityId: devEui, tenantId, lastHeard: T0 });
    // Still silent: nothing new.
    expect((await tickAt(200)).alerts).toEqual([]);
    expect(await alerts()).toEqual([{ kind: 'device', entity_id: devEui, raised_s: 90, cleared_s: null }]);

    // Flapping: one frame (recovery needs 2), then silent again, then heard twice.
    await hear(300);
    expect((await tickAt(300)).alerts).toEqual([]);
    expect((await tickAt(400)).alerts).toEqual([]);
    expect(await alerts()).toEqual([{ kind: 'device', entity_id: devEui, raised_s: 90, cleared_s: null }]);
    await hear(410);
    expect(await alerts()).toEqual([{ kind: 'device', entity_id: devEui, raised_s: 90, cleared_s: null }]);
    await hear(420);
    expect(await alerts()).toEqual([{ kind: 'device', entity_id: devEui, raised_s: 90, cleared_s: 420 }]);
    expect(await lastSeen()).toEqual({ device: T0 + 420 * S, gateway: T0 + 420 * S });
    // A late frame (network time before the last one) does not move last seen back.
    await hear(415);
    expect(await lastSeen()).toEqual({ device: T0 + 420 * S, gateway: T0 + 420 * S });
    expect(await outboxStates()).toEqual(['device:raised@90', 'device:cleared@420']);

    const published = await readTopic(2);
    expect(published.map((a) => `${a.kind}:${a.state}@${(a.time - T0) / S}`)).toEqual([
      'device:raised@90',
      'device:cleared@420',
    ]);
    expect(published[1]!.alertId).toBe(published[0]!.eventId);
  });

  it('raises a gateway alert after N minutes without a frame through it', async () => {
    // Last frame through the gateway at 420 s; its limit is 10 min, the device's 90 s.
    expect((await tickAt(420 + 599)).alerts.map((a) => `${a.kind}:${a.state}@${(a.time - T0) / S}`)).toEqual([
      'device:raised@510',
    ]);
    expect((await tickAt(420 + 601)).alerts.map((a) => `${a.kind}:${a.state}@${(a.time - T0) / S}`)).toEqual([
      'gateway:raised@1020',
    ]);
    expect((await alerts()).filter((a) => a.kind === 'gateway')).toEqual([
      { kind: 'gateway', entity_id: gwEui, raised_s: 1020, cleared_s: null },
    ]);
  });

  it('raises nothing while the broker is unreachable, nor until the consumer has been caught up for settleMs', async () => {
    // The device was last heard at 420 s and its alert (raised at 510 s) is open; make it heard and clear it, so
    // a silence after the outage would raise a new alert.
    await hear(1100);
    await hear(1110);
    expect((await alerts()).filter((a) => a.kind === 'device').map((a) => a.cleared_s)).toEqual([420, 1110]);
    await kafkaControl(config.kafka.controlPort, 'down 1');
    try {
      // Silent past 90 s, but the processor cannot know what waits in the topic.
      const during = await tickAt(1300);
      expect(during).toMatchObject({ deferred: true, lag: null, alerts: [] });
    } finally {
      await kafkaControl(config.kafka.controlPort, 'up 1');
    }
    // Back and caught up (nothing was produced): the gate opens at 1310 s and stays shut for 30 s.
    expect(
      await eventually(
        () => tickAt(1310),
        (t) => t.deferred && t.lag === 0,
      ),
    ).toMatchObject({ alerts: [] });
    expect(await tickAt(1339)).toMatchObject({ deferred: true, lag: 0, alerts: [] });
    const open = await tickAt(1340);
    expect(open.deferred).toBe(false);
    expect(open.alerts.map((a) => `${a.kind}:${a.state}@${(a.time - T0) / S}`)).toEqual([
      'device:raised@1200',
    ]);
  });

  it('raises nothing for a device taken out of service or deleted, and stops checking it', async () => {
    const retired = randomDevEui();
    const deleted = randomDevEui();
    for (const eui of [retired, deleted])
      await migrate.query(
        `INSERT INTO sensor_devices (tenant_id, dev_eui, codec, expected_uplink_interval_s)
         VALUES ($1, $2, 'browan-tbms100', 60)`,
        [tenantId, eui],
      );
    await hear(2000, retired);
    await hear(2000, deleted);
    await migrate.query(
      "UPDATE sensor_devices SET status = 'decommissioned' WHERE tenant_id = $1 AND dev_eui = $2",
      [tenantId, retired],
    );
    await migrate.query('DELETE FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2', [
      tenantId,
      deleted,
    ]);
    // Both are silent past their 90 s; the device still in service (silent since 1110 s, alert open) adds nothing.
    const tick = await tickAt(2200);
    expect(tick.alerts.filter((a) => a.entityId === retired || a.entityId === deleted)).toEqual([]);
    const { rows } = await pool.query<{ entity_id: string; next_check_at: Date | null }>(
      `SELECT entity_id, next_check_at FROM liveness_states WHERE tenant_id = $1 AND entity_id = ANY($2) ORDER BY 1`,
      [tenantId, [retired, deleted]],
    );
    expect(rows).toEqual([retired, deleted].sort().map((entity_id) => ({ entity_id, next_check_at: null })));
  });
});
