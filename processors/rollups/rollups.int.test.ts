import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { OccupancyChangeRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { startRollups, type Rollups } from './run.js';

/**
 * The rollups processor on the real stack (mock Kafka, PostgreSQL), with its own tenant, site, topics and groups
 * and a clock the test moves. Expected rows are computed by hand below (minutes after T0, an hour boundary).
 */
const config = loadConfig();
const logger = createLogger('rollups-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

let migrate: pg.Client;
let pool: Pool;
let kafka: Kafka;
let producer: Producer;
let rollups: Rollups;
let clock = T0;
const run = randomUUID().slice(0, 8);
const topics = {
  occupancyChanges: `test-rollup-changes-${run}`,
  uplinks: `test-rollup-uplinks-${run}`,
  deadLetter: `test-rollup-dlq-${run}`,
};
let tenantId: string;
let siteId: string;
const spaceIds: Record<'A' | 'B', string> = { A: '', B: '' };
const sensors: Record<'A' | 'B', string> = { A: randomDevEui(), B: randomDevEui() };

async function sendChanges(
  changes: Array<{ space: 'A' | 'B'; at: number; state: 'free' | 'occupied' }>,
): Promise<void> {
  const serde = await registerValueSchema<OccupancyChangeRecord>(
    registry,
    topics.occupancyChanges,
    readAvroSchema('occupancy-change'),
  );
  const messages = [];
  for (const c of changes) {
    const record: OccupancyChangeRecord = {
      eventId: randomUUID(),
      tenantId,
      devEui: sensors[c.space],
      spaceId: spaceIds[c.space],
      time: T0 + c.at * MIN,
      confirmedAt: T0 + c.at * MIN + 5_000,
      state: c.state,
      previousState: 'unknown',
      previousDurationMs: null,
      uplinkEventId: randomUUID(),
    };
    messages.push({ key: record.spaceId, value: await serde.encode(record) });
  }
  await producer.send({ topic: topics.occupancyChanges, acks: -1, messages });
}

interface OccRow {
  bucket: number;
  occupied: number;
  observed: number;
  rate: number;
  arrivals: number;
  dwellSum: number;
  dwellCount: number;
  dwellMedian: number | null;
}

async function spaceRows(table: 'space_occupancy_5m' | 'space_occupancy_1h', space: 'A' | 'B') {
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT extract(epoch FROM bucket) * 1000 AS bucket, occupied_seconds, observed_seconds,
            occupancy_rate::float8 AS rate, arrivals, dwell_seconds_sum, dwell_count, dwell_median_seconds
       FROM ${table} WHERE tenant_id = $1 AND space_id = $2 ORDER BY bucket`,
    [tenantId, spaceIds[space]],
  );
  return rows.map(toOccRow);
}

async function siteRows(table: 'site_occupancy_5m' | 'site_occupancy_1h') {
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT extract(epoch FROM bucket) * 1000 AS bucket, occupied_seconds, observed_seconds, spaces,
            occupancy_rate::float8 AS rate, arrivals, dwell_seconds_sum, dwell_count, dwell_median_seconds
       FROM ${table} WHERE tenant_id = $1 AND site_id = $2 ORDER BY bucket`,
    [tenantId, siteId],
  );
  return rows.map((r) => ({ ...toOccRow(r), spaces: Number(r.spaces) }));
}

function toOccRow(r: Record<string, unknown>): OccRow {
  return {
    bucket: (Number(r.bucket) - T0) / MIN,
    occupied: Number(r.occupied_seconds),
    observed: Number(r.observed_seconds),
    rate: Number(r.rate),
    arrivals: Number(r.arrivals),
    dwellSum: Number(r.dwell_seconds_sum),
    dwellCount: Number(r.dwell_count),
    dwellMedian: r.dwell_median_seconds === null ? null : Number(r.dwell_median_seconds),
  };
}

/** A row as the test states it: minutes in, seconds and real (float4) rates out. */
function occ(
  bucket: number,
  occupiedMin: number,
  observedMin: number,
  arrivals: number,
  dwellsMin: number[] = [],
): OccRow {
  const sorted = [...dwellsMin].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    bucket,
    occupied: occupiedMin * 60,
    observed: observedMin * 60,
    rate: Math.fround(occupiedMin / observedMin),
    arrivals,
    dwellSum: sorted.reduce((a, b) => a + b, 0) * 60,
    dwellCount: n,
    dwellMedian:
      n === 0 ? null : (n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2) * 60,
  };
}

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  pool = createPool(config.postgres.pipelineUrl, 'rollups-int', 4);
  tenantId = (
    await migrate.query<{ id: string }>('INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id', [
      `rollups-${run}`,
    ])
  ).rows[0]!.id;
  siteId = (
    await migrate.query<{ id: string }>('INSERT INTO sites (tenant_id, name) VALUES ($1, $2) RETURNING id', [
      tenantId,
      'Site',
    ])
  ).rows[0]!.id;
  for (const space of ['A', 'B'] as const) {
    spaceIds[space] = (
      await migrate.query<{ id: string }>(
        'INSERT INTO spaces (tenant_id, code, name, site_id) VALUES ($1, $2, $2, $3) RETURNING id',
        [tenantId, space, siteId],
      )
    ).rows[0]!.id;
    await migrate.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
      [tenantId, sensors[space], spaceIds[space]],
    );
  }
  for (const topic of Object.values(topics)) await createTestTopic(config.kafka.controlPort, topic, 1);
  kafka = createKafka(config.kafka, logger, `rollups-${run}`);
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  rollups = await startRollups({
    kafka,
    registry,
    pipelinePool: pool,
    topics,
    groupIds: { changes: `rollups-${run}`, uplinks: `rollups-health-${run}` },
    logger,
    // Ticks only when the test calls tickOnce (the first, at start, finds nothing to close).
    tick: { everyMs: 3_600_000, maxItems: 100 },
    now: () => clock,
    options: { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 },
  });
});

afterAll(async () => {
  await rollups?.stop();
  await producer?.disconnect();
  await pool?.end();
  await migrate?.end();
});

describe('rollups processor', () => {
  it('writes exact space and site rows across 5-minute and hour boundaries, and a late event corrects closed buckets', async () => {
    // A: occupied 1-4, 7-13 (dwells 3 and 6 min). B: free from 0, occupied 2-62 (a 60-min dwell ending at 62).
    await sendChanges([
      { space: 'B', at: 0, state: 'free' },
      { space: 'A', at: 1, state: 'occupied' },
      { space: 'B', at: 2, state: 'occupied' },
      { space: 'A', at: 4, state: 'free' },
      { space: 'A', at: 7, state: 'occupied' },
      { space: 'A', at: 13, state: 'free' },
      { space: 'B', at: 62, state: 'free' },
    ]);
    await eventually(
      async () => rollups.changes.applied(),
      (n) => n === 7,
    );
    clock = T0 + 65 * MIN;
    const tick = await rollups.tickOnce();
    expect(tick.sites).toBe(1);

    // Watermark 65: 5-minute buckets 0..60 and the hour 0..60 are closed; the hour 60..120 is not.
    const a5 = await spaceRows('space_occupancy_5m', 'A');
    expect(a5).toHaveLength(13);
    expect(a5.slice(0, 4)).toEqual([
      occ(0, 3, 4, 1, [3]),
      occ(5, 3, 5, 1),
      occ(10, 3, 5, 0, [6]),
      occ(15, 0, 5, 0),
    ]);
    expect(a5[12]).toEqual(occ(60, 0, 5, 0));
    const b5 = await spaceRows('space_occupancy_5m', 'B');
    expect(b5).toHaveLength(13);
    expect(b5[0]).toEqual(occ(0, 3, 5, 1));
    expect(b5[6]).toEqual(occ(30, 5, 5, 0));
    expect(b5[12]).toEqual(occ(60, 2, 5, 0, [60]));
    expect(await spaceRows('space_occupancy_1h', 'A')).toEqual([occ(0, 9, 59, 2, [3, 6])]);
    expect(await spaceRows('space_occupancy_1h', 'B')).toEqual([occ(0, 58, 60, 1)]);
    expect(await siteRows('site_occupancy_1h')).toEqual([{ ...occ(0, 67, 119, 3, [3, 6]), spaces: 2 }]);
    const site5 = await siteRows('site_occupancy_5m');
    expect(site5).toHaveLength(13);
    expect(site5[0]).toEqual({ ...occ(0, 6, 9, 2, [3]), spaces: 2 });
    expect(site5[12]).toEqual({ ...occ(60, 2, 10, 0, [60]), spaces: 2 });

    // Late: A occupied from 30 (after the buckets 30..65 and the hour were closed) — they are corrected.
    await sendChanges([{ space: 'A', at: 30, state: 'occupied' }]);
    await eventually(
      async () => (await spaceRows('space_occupancy_1h', 'A'))[0]?.occupied,
      (s) => s === 39 * 60,
    );
    expect(await spaceRows('space_occupancy_1h', 'A')).toEqual([occ(0, 39, 59, 3, [3, 6])]);
    expect(await siteRows('site_occupancy_1h')).toEqual([{ ...occ(0, 97, 119, 4, [3, 6]), spaces: 2 }]);
    const a5late = await spaceRows('space_occupancy_5m', 'A');
    expect(a5late).toHaveLength(13);
    expect(a5late.slice(5, 8)).toEqual([occ(25, 0, 5, 0), occ(30, 5, 5, 1), occ(35, 5, 5, 0)]);
    expect(a5late[12]).toEqual(occ(60, 5, 5, 0));
    expect((await siteRows('site_occupancy_5m'))[12]).toEqual({ ...occ(60, 7, 10, 0, [60]), spaces: 2 });
    // Untouched rows before the late event keep their values.
    expect(a5late.slice(0, 4)).toEqual(a5.slice(0, 4));
  });

  it('writes device health per 5-minute and hourly bucket from uplinks', async () => {
    const serde = await registerValueSchema<UplinkRecord>(registry, topics.uplinks, readAvroSchema('uplink'));
    const uplink = (
      at: number,
      batteryVolts: number,
      rssi: number,
      snr: number,
      fCnt: number,
    ): UplinkRecord => ({
      eventId: randomUUID(),
      tenantId,
      devEui: sensors.A,
      spaceId: spaceIds.A,
      time: T0 + at * MIN,
      receivedAt: T0 + at * MIN + 50,
      source: 'MQTT',
      applicationId: 'app',
      fCnt,
      fPort: 102,
      codec: 'browan-tbms100',
      occupied: true,
      batteryVolts,
      temperatureC: 20,
      rssi,
      snr,
      gatewayIds: [],
      payload: Buffer.from([1]),
      frameType: null,
      batteryStatus: null,
    });
    const records = [uplink(1, 3.6, -90, 7, 1), uplink(2, 3.5, -100, 5, 2), uplink(6, 3.4, -80, 9, 3)];
    await producer.send({
      topic: topics.uplinks,
      acks: -1,
      messages: await Promise.all(
        records.map(async (r) => ({ key: r.devEui, value: await serde.encode(r) })),
      ),
    });
    await eventually(
      async () => rollups.uplinks.applied(),
      (n) => n === 3,
    );
    const health = async (table: string) =>
      (
        await pool.query<Record<string, unknown>>(
          `SELECT (extract(epoch FROM bucket) * 1000 - $3) / 60000 AS bucket, uplinks,
                  (extract(epoch FROM last_seen_at) * 1000 - $3) / 60000 AS last_seen, battery_volts,
                  min_battery_volts, min_rssi, mean_rssi, min_snr, mean_snr
             FROM ${table} WHERE tenant_id = $1 AND dev_eui = $2 ORDER BY bucket`,
          [tenantId, sensors.A, T0],
        )
      ).rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));
    expect(await health('device_health_5m')).toEqual([
      {
        bucket: 0,
        uplinks: 2,
        last_seen: 2,
        battery_volts: 3.5,
        min_battery_volts: 3.5,
        min_rssi: -100,
        mean_rssi: -95,
        min_snr: 5,
        mean_snr: 6,
      },
      {
        bucket: 5,
        uplinks: 1,
        last_seen: 6,
        battery_volts: 3.4,
        min_battery_volts: 3.4,
        min_rssi: -80,
        mean_rssi: -80,
        min_snr: 9,
        mean_snr: 9,
      },
    ]);
    expect(await health('device_health_1h')).toEqual([
      {
        bucket: 0,
        uplinks: 3,
        last_seen: 6,
        battery_volts: 3.4,
        min_battery_volts: 3.4,
        min_rssi: -100,
        mean_rssi: -90,
        min_snr: 5,
        mean_snr: 7,
      },
    ]);

    // A later batch continues the buckets from the accumulators stored on the rows, not from the site's state.
    const fourth = uplink(7, 3.3, -70, 11, 4);
    await producer.send({
      topic: topics.uplinks,
      acks: -1,
      messages: [{ key: fourth.devEui, value: await serde.encode(fourth) }],
    });
    await eventually(
      async () => rollups.uplinks.applied(),
      (n) => n === 4,
    );
    expect((await health('device_health_5m'))[1]).toEqual({
      bucket: 5,
      uplinks: 2,
      last_seen: 7,
      battery_volts: 3.3,
      min_battery_volts: 3.3,
      min_rssi: -80,
      mean_rssi: -75,
      min_snr: 9,
      mean_snr: 10,
    });
    expect(await health('device_health_1h')).toEqual([
      {
        bucket: 0,
        uplinks: 4,
        last_seen: 7,
        battery_volts: 3.3,
        min_battery_volts: 3.3,
        min_rssi: -100,
        mean_rssi: -85,
        min_snr: 5,
        mean_snr: 8,
      },
    ]);
    const { rows } = await pool.query<{ health: unknown; ids: number }>(
      `SELECT r.state->'health' AS health,
              (SELECT jsonb_array_length(h.accumulator->'eventIds') FROM device_health_1h h
                WHERE h.tenant_id = r.tenant_id AND h.dev_eui = $2) AS ids
         FROM rollup_states r WHERE r.tenant_id = $1`,
      [tenantId, sensors.A],
    );
    expect(rows).toEqual([{ health: {}, ids: 4 }]);
  });

  it('replaying every record (a new consumer group from the start) leaves every row as it was', async () => {
    const snapshot = async () => {
      const all: Record<string, unknown[]> = {};
      for (const table of [
        'space_occupancy_5m',
        'space_occupancy_1h',
        'site_occupancy_5m',
        'site_occupancy_1h',
        'device_health_5m',
        'device_health_1h',
      ])
        all[table] = (
          await pool.query(`SELECT * FROM ${table} WHERE tenant_id = $1 ORDER BY 1, 2, 3`, [tenantId])
        ).rows;
      return all;
    };
    const before = await snapshot();
    expect(before.space_occupancy_5m).toHaveLength(26);
    const replay = await startRollups({
      kafka,
      registry,
      pipelinePool: pool,
      topics,
      groupIds: { changes: `rollups-replay-${run}`, uplinks: `rollups-health-replay-${run}` },
      logger,
      tick: { everyMs: 3_600_000, maxItems: 100 },
      now: () => clock,
      options: { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 },
    });
    try {
      await eventually(
        async () => [replay.changes.applied(), replay.uplinks.applied()],
        ([changes, uplinks]) => changes === 8 && uplinks === 4,
      );
      expect(await snapshot()).toEqual(before);
    } finally {
      await replay.stop();
    }
  });

  it('a tick far ahead closes at most one late horizon of a lagging site and settles old health buckets for good', async () => {
    const watermark = async () =>
      Number(
        (
          await pool.query<{ w: string }>(
            "SELECT state->>'watermark' AS w FROM rollup_states WHERE tenant_id = $1",
            [tenantId],
          )
        ).rows[0]!.w,
      );
    const before = await watermark();
    const accumulators = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM device_health_1h WHERE tenant_id = $1 AND accumulator IS NOT NULL`,
          [tenantId],
        )
      ).rows[0]!.n;
    expect(await accumulators()).toBe(1);
    clock = T0 + 60 * 24 * 60 * MIN;
    await rollups.tickOnce();
    // 60 days behind: this tick closes one late horizon (24 h by default) and leaves the rest to the next ticks.
    expect(await watermark()).toBe(before + 24 * 60 * MIN);
    expect(await accumulators()).toBe(0);

    // An uplink for a settled bucket changes nothing (it is as late as the horizon allows).
    const serde = await registerValueSchema<UplinkRecord>(registry, topics.uplinks, readAvroSchema('uplink'));
    const rowsBefore = (
      await pool.query('SELECT * FROM device_health_1h WHERE tenant_id = $1 ORDER BY bucket', [tenantId])
    ).rows;
    const applied = rollups.uplinks.applied();
    const late: UplinkRecord = {
      eventId: randomUUID(),
      tenantId,
      devEui: sensors.A,
      spaceId: spaceIds.A,
      time: T0 + 3 * MIN,
      receivedAt: T0 + 3 * MIN,
      source: 'MQTT',
      applicationId: 'app',
      fCnt: 99,
      fPort: 102,
      codec: 'browan-tbms100',
      occupied: true,
      batteryVolts: 2.9,
      temperatureC: 20,
      rssi: -120,
      snr: -5,
      gatewayIds: [],
      payload: Buffer.from([1]),
      frameType: null,
      batteryStatus: null,
    };
    await producer.send({
      topic: topics.uplinks,
      acks: -1,
      messages: [{ key: late.devEui, value: await serde.encode(late) }],
    });
    await eventually(
      async () => rollups.uplinks.applied(),
      (n) => n === applied + 1,
    );
    expect(
      (await pool.query('SELECT * FROM device_health_1h WHERE tenant_id = $1 ORDER BY bucket', [tenantId]))
        .rows,
    ).toEqual(rowsBefore);
  });
});
