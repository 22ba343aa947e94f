import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema, type AvroSerde } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import { mulberry32 } from '../shared/testing/random.js';
import { defaultOccupancyPolicy, initialSpaceState, reduceOccupancy } from './reduce.js';
import { startOccupancy, type OccupancyProcessor } from './run.js';

/**
 * Drills on the real stack (mock Kafka, PostgreSQL): the occupancy processor on the shared runtime loses and
 * duplicates nothing across a crash between apply and Kafka commit, a restart and a rebalance. Each drill has its
 * own tenant, topics and consumer group; the expected changes are computed by running the pure reducer over the
 * generated input, and the database and the change topic are compared with them exactly.
 */
const config = loadConfig();
const logger = createLogger('occupancy-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const spaces = 12;
let migrate: pg.Client;
let pool: Pool;
let producer: Producer;
let serde: AvroSerde<UplinkRecord>;

interface Drill {
  run: string;
  tenantId: string;
  devices: Array<{ devEui: string; spaceId: string }>;
  topics: { uplinks: string; occupancyChanges: string; deadLetter: string };
  kafka: Kafka;
  fCnt: Map<string, number>;
  time: number;
  sent: UplinkRecord[];
}

async function newDrill(): Promise<Drill> {
  const run = randomUUID().slice(0, 8);
  const { rows } = await migrate.query<{ id: string }>(
    'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
    [`occ-${run}`],
  );
  const tenantId = rows[0]!.id;
  const devices = [];
  for (let i = 0; i < spaces; i++) {
    const space = await migrate.query<{ id: string }>(
      'INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $2) RETURNING id',
      [tenantId, `S-${i}`],
    );
    const devEui = randomDevEui();
    await migrate.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
      [tenantId, devEui, space.rows[0]!.id],
    );
    devices.push({ devEui, spaceId: space.rows[0]!.id });
  }
  const topics = {
    uplinks: `test-occ-uplinks-${run}`,
    occupancyChanges: `test-occ-changes-${run}`,
    deadLetter: `test-occ-dlq-${run}`,
  };
  await createTestTopic(config.kafka.controlPort, topics.uplinks, 3);
  await createTestTopic(config.kafka.controlPort, topics.occupancyChanges, 3);
  await createTestTopic(config.kafka.controlPort, topics.deadLetter, 1);
  return {
    run,
    tenantId,
    devices,
    topics,
    kafka: createKafka(config.kafka, logger, `occ-${run}`),
    fCnt: new Map(),
    time: Date.now() - 3_600_000,
    sent: [],
  };
}

/** `count` readings, round robin over the spaces, 1 s apart per space, noisy (seeded) occupancy. */
async function produceReadings(drill: Drill, count: number, seed: number): Promise<void> {
  const random = mulberry32(seed);
  const records: UplinkRecord[] = [];
  for (let i = 0; i < count; i++) {
    const device = drill.devices[i % drill.devices.length]!;
    if (i % drill.devices.length === 0) drill.time += 1_000;
    const fCnt = (drill.fCnt.get(device.devEui) ?? 0) + 1;
    drill.fCnt.set(device.devEui, fCnt);
    records.push({
      eventId: randomUUID(),
      tenantId: drill.tenantId,
      devEui: device.devEui,
      spaceId: device.spaceId,
      time: drill.time,
      receivedAt: drill.time + 50,
      source: 'MQTT',
      applicationId: 'app',
      fCnt,
      fPort: 102,
      codec: 'browan-tbms100',
      occupied: random() < 0.5,
      batteryVolts: 3.6,
      temperatureC: 20,
      rssi: -90,
      snr: 7,
      gatewayIds: [],
      payload: Buffer.from([1]),
      frameType: null,
      batteryStatus: null,
    });
  }
  for (let i = 0; i < records.length; i += 200) {
    const slice = records.slice(i, i + 200);
    await producer.send({
      topic: drill.topics.uplinks,
      acks: -1,
      messages: await Promise.all(slice.map(async (r) => ({ key: r.devEui, value: await serde.encode(r) }))),
    });
  }
  drill.sent.push(...records);
}

/** The changes the input must produce, by the pure reducer with the default policy: event id -> state. */
function reference(drill: Drill): Map<string, string> {
  const states = new Map<string, typeof initialSpaceState>();
  const expected = new Map<string, string>();
  for (const uplink of drill.sent) {
    const result = reduceOccupancy(
      states.get(uplink.spaceId!) ?? initialSpaceState,
      { type: 'uplink', uplink },
      defaultOccupancyPolicy,
    );
    states.set(uplink.spaceId!, result.state);
    for (const e of result.effects) if (e.type === 'occupancy-changed') expected.set(e.eventId, e.to);
  }
  return expected;
}

async function storedChanges(drill: Drill): Promise<Array<{ event_id: string; state: string }>> {
  const { rows } = await pool.query<{ event_id: string; state: string }>(
    'SELECT event_id, state FROM occupancy_changes WHERE tenant_id = $1',
    [drill.tenantId],
  );
  return rows;
}

async function storedOffsetSum(drill: Drill, groupId: string): Promise<number> {
  const { rows } = await pool.query<{ n: string | null }>(
    'SELECT sum(next_offset) AS n FROM processor_offsets WHERE group_id = $1 AND topic = $2',
    [groupId, drill.topics.uplinks],
  );
  return Number(rows[0]!.n ?? 0);
}

function start(
  drill: Drill,
  groupId: string,
  kafka = drill.kafka,
  partitionsConsumedConcurrently = 1,
): Promise<OccupancyProcessor> {
  return startOccupancy({
    kafka,
    registry,
    pipelinePool: pool,
    topics: drill.topics,
    groupId,
    logger,
    options: {
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      maxBatch: 50,
      partitionsConsumedConcurrently,
    },
  });
}

/** Reads the change topic from the beginning until `expected` distinct ids arrived; returns every id seen. */
async function readChangeIds(drill: Drill, expected: number): Promise<string[]> {
  const consumer = drill.kafka.consumer({ groupId: `reader-${drill.run}-${randomUUID().slice(0, 4)}` });
  const ids: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: drill.topics.occupancyChanges, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      ids.push(message.headers?.['event-id']?.toString() ?? '');
    },
  });
  try {
    await eventually(
      async () => new Set(ids).size,
      (n) => n >= expected,
    );
    return ids;
  } finally {
    await consumer.disconnect();
  }
}

function expectExactly(rows: Array<{ event_id: string; state: string }>, expected: Map<string, string>) {
  expect(rows.length).toBe(expected.size);
  expect(new Map(rows.map((r) => [r.event_id, r.state]))).toEqual(expected);
}

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  pool = createPool(config.postgres.pipelineUrl, 'occupancy-int', 8);
  producer = createKafka(config.kafka, logger, 'occupancy-int-producer').producer({ idempotent: true });
  await producer.connect();
  serde = await registerValueSchema<UplinkRecord>(
    registry,
    'test-occ-uplinks-value',
    readAvroSchema('uplink'),
  );
});

afterAll(async () => {
  await producer?.disconnect();
  await pool?.end();
  await migrate?.end();
});

describe('occupancy on the shared runtime, effectively once', () => {
  it('a crash between apply and the Kafka commit duplicates nothing: the restart resumes from the offsets in PostgreSQL', async () => {
    const drill = await newDrill();
    const groupId = `occ-${drill.run}`;
    await produceReadings(drill, 600, 1);
    // The first instance never commits to Kafka: as if it died after every transaction, before the commit.
    const crashing = createKafka(config.kafka, logger, `occ-crash-${drill.run}`);
    const consumerOf = crashing.consumer.bind(crashing);
    crashing.consumer = (cfg) => {
      const consumer = consumerOf(cfg);
      consumer.commitOffsets = async () => undefined;
      return consumer;
    };
    const first = await start(drill, groupId, crashing);
    await eventually(
      () => storedOffsetSum(drill, groupId),
      (n) => n === 600,
    );
    await first.stop();
    expectExactly(await storedChanges(drill), reference(drill));

    // Kafka has no committed offset for the group: only the seek to the stored offsets keeps it from replaying.
    await produceReadings(drill, 240, 2);
    const second = await start(drill, groupId);
    try {
      await eventually(
        () => storedOffsetSum(drill, groupId),
        (n) => n === 840,
      );
      expect(second.applied()).toBe(240);
      const expected = reference(drill);
      expect(expected.size).toBeGreaterThan(20);
      expectExactly(await storedChanges(drill), expected);
      const ids = await readChangeIds(drill, expected.size);
      expect(new Set(ids)).toEqual(new Set(expected.keys()));
      const unsent = await pool.query('SELECT 1 FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL', [
        drill.tenantId,
      ]);
      expect(unsent.rowCount).toBe(0);
    } finally {
      await second.stop();
    }
  });

  it('an undecodable record in a pipelined batch is dead-lettered once, and the records around it are applied once', async () => {
    const drill = await newDrill();
    const groupId = `occ-${drill.run}`;
    await produceReadings(drill, 300, 4);
    // Same key as a device: the bad record sits in that device's partition, between its valid readings.
    await producer.send({
      topic: drill.topics.uplinks,
      acks: -1,
      messages: [{ key: drill.devices[0]!.devEui, value: Buffer.from('not avro') }],
    });
    await produceReadings(drill, 300, 5);
    const processor = await start(drill, groupId, drill.kafka, 8);
    const codes: string[] = [];
    const dlq = drill.kafka.consumer({ groupId: `dlq-${drill.run}` });
    await dlq.connect();
    await dlq.subscribe({ topic: drill.topics.deadLetter, fromBeginning: true });
    await dlq.run({
      eachMessage: async ({ message }) => void codes.push(message.headers?.['error-code']?.toString() ?? ''),
    });
    try {
      await eventually(
        () => storedOffsetSum(drill, groupId),
        (n) => n === 601,
      );
      expect(processor.applied()).toBe(600);
      expectExactly(await storedChanges(drill), reference(drill));
      await eventually(
        async () => codes.length,
        (n) => n >= 1,
      );
      expect(codes).toEqual(['DECODE_FAILED']);
    } finally {
      await dlq.disconnect();
      await processor.stop();
    }
  });

  it('the debounce run survives a restart: one reading before the stop and one after confirm the change', async () => {
    const drill = await newDrill();
    const groupId = `occ-${drill.run}`;
    drill.devices = drill.devices.slice(0, 1);
    const processor = await start(drill, groupId);
    await produceReadings(drill, 1, 3);
    await eventually(
      () => storedOffsetSum(drill, groupId),
      (n) => n === 1,
    );
    await processor.stop();
    const { rows } = await pool.query<{ pending_occupied: boolean | null; pending_times: string[] | null }>(
      'SELECT pending_occupied, pending_times FROM spaces WHERE tenant_id = $1 AND id = $2',
      [drill.tenantId, drill.devices[0]!.spaceId],
    );
    expect(rows[0]!.pending_occupied).toBe(drill.sent[0]!.occupied);
    expect(rows[0]!.pending_times?.map(Number)).toEqual([drill.sent[0]!.time]);
    // Same value again, 1 s later: the stored run plus this reading confirm.
    const again = { ...drill.sent[0]!, eventId: randomUUID(), fCnt: 2, time: drill.sent[0]!.time + 1_000 };
    await producer.send({
      topic: drill.topics.uplinks,
      messages: [{ key: again.devEui, value: await serde.encode(again) }],
    });
    drill.sent.push(again);
    const restarted = await start(drill, groupId);
    try {
      await eventually(
        () => storedChanges(drill),
        (r) => r.length === 1,
      );
      expectExactly(await storedChanges(drill), reference(drill));
      expect(restarted.applied()).toBe(1);
    } finally {
      await restarted.stop();
    }
  });

  it('stored offsets beyond the log end (the topic was recreated) are reset and reported, not skipped forever', async () => {
    const drill = await newDrill();
    const groupId = `occ-${drill.run}`;
    // As after a restart of the local broker, which keeps no data: PostgreSQL remembers positions of the old log.
    for (const partition of [0, 1, 2]) {
      await pool.query(
        'INSERT INTO processor_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, 500)',
        [groupId, drill.topics.uplinks, partition],
      );
    }
    await produceReadings(drill, 60, 7);
    const processor = await start(drill, groupId);
    try {
      await eventually(
        () => storedOffsetSum(drill, groupId),
        (n) => n === 60,
      );
      expect(processor.applied()).toBe(60);
      expectExactly(await storedChanges(drill), reference(drill));
    } finally {
      await processor.stop();
    }
  });

  it('a consumer kafkajs gives up on (a crash it does not retry) is replaced, and every record is applied once', async () => {
    const drill = await newDrill();
    const groupId = `occ-${drill.run}`;
    await produceReadings(drill, 120, 7);
    // The first consumer's first group join throws a plain (non-retriable) error, as a SyncGroup answered with
    // INVALID_REQUEST does: kafkajs then disconnects it for good instead of restarting it.
    let consumers = 0;
    const kafka = Object.create(drill.kafka) as Kafka;
    kafka.consumer = (config) => {
      const consumer = drill.kafka.consumer(config);
      if (consumers++ === 0)
        consumer.on(consumer.events.GROUP_JOIN, () => {
          throw new Error('injected crash in the group join');
        });
      return consumer;
    };
    const metrics = new Registry();
    const processor = await startOccupancy({
      kafka,
      registry,
      pipelinePool: pool,
      topics: drill.topics,
      groupId,
      logger,
      metrics,
      options: {
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 500,
        maxBatch: 50,
        partitionsConsumedConcurrently: 8,
      },
    });
    try {
      await eventually(
        () => storedOffsetSum(drill, groupId),
        (n) => n === 120,
        { timeoutMs: 30_000 },
      );
      expect(consumers).toBe(2);
      expect(processor.applied()).toBe(120);
      expect([...processor.assigned()].sort()).toEqual([0, 1, 2]);
      expectExactly(await storedChanges(drill), reference(drill));
      const restarts = (await metrics.getSingleMetric('processor_errors_total')!.get()).values.filter(
        (v) => v.labels.handling === 'consumer-restarted',
      );
      expect(restarts.map((v) => v.value)).toEqual([1]);
    } finally {
      await processor.stop();
    }
  });

  it.each([1, 8])(
    'a rebalance with two instances in one group splits the partitions and loses or duplicates nothing (partitionsConsumedConcurrently %i)',
    async (concurrency) => {
      const drill = await newDrill();
      const groupId = `occ-${drill.run}`;
      await produceReadings(drill, 300, 4);
      const a = await start(drill, groupId, drill.kafka, concurrency);
      const b = await start(
        drill,
        groupId,
        createKafka(config.kafka, logger, `occ-b-${drill.run}`),
        concurrency,
      );
      try {
        await eventually(
          async () => [a.assigned().length, b.assigned().length],
          ([x, y]) => x! > 0 && y! > 0 && x! + y! === 3,
          { timeoutMs: 30_000 },
        );
        expect([...a.assigned(), ...b.assigned()].sort()).toEqual([0, 1, 2]);
        await produceReadings(drill, 300, 5);
        await eventually(
          () => storedOffsetSum(drill, groupId),
          (n) => n === 600,
          { timeoutMs: 30_000 },
        );
        // One instance leaves mid-stream: the other takes its partitions from the stored offsets.
        await a.stop();
        await produceReadings(drill, 300, 6);
        await eventually(
          () => storedOffsetSum(drill, groupId),
          (n) => n === 900,
          { timeoutMs: 40_000 },
        );
        expect(a.applied() + b.applied()).toBe(900);
        expectExactly(await storedChanges(drill), reference(drill));
      } finally {
        await a.stop();
        await b.stop();
      }
    },
  );
});
