/**
 * Occupancy processor benchmark on the local stack, in one run and on the same services:
 *   raw COPY      rows/s COPY'd (pg-copy-streams) into a temporary copy of `uplinks` — the database's ceiling;
 *   raw consume   records/s a plain kafkajs eachBatch consumer reads from a pre-filled topic — the broker's;
 *   applied       uplinks/s the occupancy processor applies from the same pre-filled topic (decode, reduce,
 *                 space rows, uplinks, occupancy_changes, outbox, offsets, all in one transaction per batch);
 *   latency       uplink produced -> occupancy change received on its Avro topic, p50/p99, at a paced rate.
 * Bounded by `count` and `timeoutMs`.
 */
import { randomUUID } from 'node:crypto';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTopic } from '../lib/testing/kafka-control.js';
import { startOccupancy } from '../processors/occupancy/run.js';
import { readAvroSchema } from '../schemas/catalog.js';
import type { OccupancyChangeRecord, UplinkRecord } from '../schemas/avro/records.js';
import { createBenchTenant } from './pipeline-throughput.js';

export async function occupancyThroughput({
  count = 20_000,
  devices = 500,
  rate = 2_000,
  seconds = 5,
  timeoutMs = 120_000,
} = {}) {
  const config = loadConfig();
  const logger = createLogger('bench', 'error');
  const run = randomUUID().slice(0, 8);
  const deadline = Date.now() + timeoutMs;
  const { tenantId, devEuis } = await createBenchTenant(config.postgres.migrateUrl, devices);
  const migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  const spaceIds = new Map(
    (
      await migrate.query<{ dev_eui: string; space_id: string }>(
        'SELECT dev_eui, space_id FROM sensor_devices WHERE tenant_id = $1',
        [tenantId],
      )
    ).rows.map((r) => [r.dev_eui, r.space_id]),
  );
  const registry = createSchemaRegistry(config.schemaRegistry);
  const kafka = createKafka(config.kafka, logger, `bench-occ-${run}`);
  const topics = {
    uplinks: `bench-occ-uplinks-${run}`,
    occupancyChanges: `bench-occ-changes-${run}`,
    deadLetter: `bench-occ-dlq-${run}`,
  };
  for (const [topic, partitions] of [
    [topics.uplinks, 6],
    [topics.occupancyChanges, 6],
    [topics.deadLetter, 1],
  ] as const)
    await createTestTopic(config.kafka.controlPort, topic, partitions);
  const serde = await registerValueSchema<UplinkRecord>(registry, topics.uplinks, readAvroSchema('uplink'));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const pool = createPool(config.postgres.pipelineUrl, `bench-occ-${run}`, 4);
  const fCnts = new Map<string, number>();
  const uplink = (i: number, time: number): UplinkRecord => {
    const devEui = devEuis[i % devices]!;
    const fCnt = (fCnts.get(devEui) ?? 0) + 1;
    fCnts.set(devEui, fCnt);
    // Pairs of equal readings per device: every second reading of a device confirms a change.
    const occupied = Math.floor(fCnt / 2) % 2 === 0;
    return {
      eventId: randomUUID(),
      tenantId,
      devEui,
      spaceId: spaceIds.get(devEui) ?? null,
      time,
      receivedAt: time,
      source: 'MQTT',
      applicationId: 'bench',
      fCnt,
      fPort: 102,
      codec: 'browan-tbms100',
      occupied,
      batteryVolts: 3.6,
      temperatureC: 20,
      rssi: -90,
      snr: 7,
      gatewayIds: [],
      payload: Buffer.from([1]),
      frameType: null,
      batteryStatus: null,
    };
  };
  try {
    // Raw COPY into a temporary table shaped like uplinks.
    await migrate.query('CREATE TEMP TABLE bench_copy (LIKE uplinks)');
    const copyStarted = performance.now();
    const rows = function* () {
      for (let i = 0; i < count; i++)
        yield `${tenantId}\t${new Date().toISOString()}\t${randomUUID()}\tBENCH\t\\N\t${i}\t102\tt\t3.6\t20\t-90\t7\t\\\\x01\t${new Date().toISOString()}\n`;
    };
    await streamPipeline(
      Readable.from(rows()),
      migrate.query(copyStreams.from('COPY bench_copy FROM STDIN')),
    );
    const copyPerSecond = Math.round((count / (performance.now() - copyStarted)) * 1000);

    // Pre-fill the uplinks topic (times 1 s apart per device, in the past).
    const base = Date.now() - 86_400_000;
    for (let i = 0; i < count; i += 1_000) {
      const messages = [];
      for (let j = i; j < Math.min(count, i + 1_000); j++) {
        const u = uplink(j, base + Math.floor(j / devices) * 1_000);
        messages.push({ key: u.devEui, value: await serde.encode(u) });
      }
      await producer.send({ topic: topics.uplinks, acks: -1, messages });
    }

    // Raw consume of the same topic.
    let consumed = 0;
    const raw = kafka.consumer({ groupId: `bench-raw-${run}`, maxWaitTimeInMs: 50 });
    await raw.connect();
    await raw.subscribe({ topic: topics.uplinks, fromBeginning: true });
    const consumeStarted = performance.now();
    await raw.run({ eachBatch: async ({ batch }) => void (consumed += batch.messages.length) });
    while (consumed < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const consumePerSecond = Math.round((count / (performance.now() - consumeStarted)) * 1000);
    await raw.disconnect();

    // The occupancy processor over the same records.
    const appliedStarted = performance.now();
    const processor = await startOccupancy({
      kafka,
      registry,
      pipelinePool: pool,
      topics,
      groupId: `bench-occ-${run}`,
      logger,
    });
    while (processor.applied() < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const appliedPerSecond = Math.round((count / (performance.now() - appliedStarted)) * 1000);

    // Latency at a paced rate: the confirming uplink's time is its produce time.
    const latencies: number[] = [];
    const reader = kafka.consumer({ groupId: `bench-reader-${run}`, maxWaitTimeInMs: 20 });
    await reader.connect();
    await reader.subscribe({ topic: topics.occupancyChanges, fromBeginning: false });
    const changes = await registerValueSchema<OccupancyChangeRecord>(
      registry,
      topics.occupancyChanges,
      readAvroSchema('occupancy-change'),
    );
    void changes;
    const pacedStart = Date.now();
    await reader.run({
      eachMessage: async ({ message }) => {
        const change = (await registry.decode(message.value!)) as OccupancyChangeRecord;
        if (change.confirmedAt >= pacedStart) latencies.push(Date.now() - change.confirmedAt);
      },
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const total = rate * seconds;
    const tick = 20;
    let sent = 0;
    const started = Date.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
      const messages = [];
      for (; sent < due; sent++) {
        const u = uplink(count + sent, Date.now());
        messages.push({ key: u.devEui, value: await serde.encode(u) });
      }
      if (messages.length > 0) await producer.send({ topic: topics.uplinks, acks: -1, messages });
      await new Promise((r) => setTimeout(r, tick));
    }
    await new Promise((r) => setTimeout(r, 3_000));
    await reader.disconnect();
    await processor.stop();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
    return {
      count,
      copyPerSecond,
      consumePerSecond,
      appliedPerSecond,
      rate,
      changes: latencies.length,
      p50: pct(50),
      p99: pct(99),
    };
  } finally {
    await producer.disconnect();
    await pool.end();
    await migrate.end();
  }
}
