/**
 * Where the bridge's time per event goes: each stage of `bridge.handle` run alone, one event after another, on
 * the same ChirpStack uplink bodies the throughput benchmark sends, with the CPU time (user + system) of this
 * process and the wall time per event. Stages: parse (JSON.parse alone, then the full JSON and protobuf parse
 * with validation), resolve (device directory, cache hit), dedup (claim + commit, local window), decode
 * (uplink view + codec), Avro encode (Confluent framing; through the registry client and compiled once), produce (batching sink -> kafkajs -> broker, batches of
 * `batch`), then the whole `handle` with a sink that acknowledges at once and with the real sink. Needs the local
 * stack (database, registry, broker). The sum of the stages is close to the whole; what remains is plumbing.
 */
import { randomUUID } from 'node:crypto';
import { testTopics } from '../e2e/pipeline.js';
import { createBridge, type BridgeSerdes, type BridgeSink } from '../ingest/bridge.js';
import type { UpEvent } from '../ingest/chirpstack/event-types.js';
import { parseChirpStackEvent } from '../ingest/chirpstack/parse-event.js';
import { toParsedUplink } from '../ingest/chirpstack/uplink-event.js';
import { decodeReading } from '../ingest/codecs/index.js';
import { Deduplicator } from '../ingest/dedup.js';
import { DeviceDirectory } from '../ingest/device-directory.js';
import { createIngestMetrics } from '../ingest/metrics.js';
import { MemoryOrphanSink } from '../ingest/orphans.js';
import { encodeEvent, tbms100Payload, uplinkEvent } from '../ingest/simulator/chirpstack-sim.js';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema } from '../lib/kafka/avro.js';
import { startBatchingKafkaSink } from '../lib/kafka/batching-sink.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTopic } from '../lib/testing/kafka-control.js';
import { readAvroSchema } from '../schemas/catalog.js';
import type { UplinkRecord } from '../schemas/avro/records.js';
import { createBenchTenant } from './pipeline-throughput.js';

export interface StageCost {
  stage: string;
  /** CPU time of this process per event, µs. */
  cpuMicros: number;
  /** Wall time per event, µs. */
  wallMicros: number;
}

/** Runs `step(i)` for i in [0, n) after a warm-up of n/5, and returns its cost per call. */
async function cost(
  stage: string,
  n: number,
  step: (i: number) => unknown,
  concurrency = 1,
): Promise<StageCost> {
  const run = async (from: number, to: number) => {
    if (concurrency === 1) {
      for (let i = from; i < to; i++) await step(i);
      return;
    }
    const inFlight = new Set<Promise<unknown>>();
    for (let i = from; i < to; i++) {
      const p = Promise.resolve(step(i)).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  };
  await run(0, Math.ceil(n / 5));
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(0, n);
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return {
    stage,
    cpuMicros: Math.round(((used.user + used.system) / n) * 10) / 10,
    wallMicros: Math.round(((wall * 1000) / n) * 10) / 10,
  };
}

async function sequential<T>(steps: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  for (const step of steps) results.push(await step());
  return results;
}

export async function ingestStages({ count = 5_000, devices = 200, batch = 500 } = {}): Promise<StageCost[]> {
  const config = loadConfig();
  const logger = createLogger('bench', 'error');
  const run = `stages-${randomUUID().slice(0, 8)}`;
  const topics = testTopics(run);
  await createTestTopic(config.kafka.controlPort, topics.uplinks, 6);
  await createTestTopic(config.kafka.controlPort, topics.deadLetter, 1);
  await createTestTopic(config.kafka.controlPort, topics.orphanUplinks, 1);
  const { devEuis } = await createBenchTenant(config.postgres.migrateUrl, devices);
  const pool = createPool(config.postgres.pipelineUrl, `bench-${run}`, 4);
  const kafka = createKafka(config.kafka, logger, run);
  const registry = createSchemaRegistry(config.schemaRegistry);
  const register = <T>(topic: string, file: Parameters<typeof readAvroSchema>[0]) =>
    registerValueSchema<T>(registry, topic, readAvroSchema(file));
  const serdes: BridgeSerdes = {
    uplink: await register(topics.uplinks, 'uplink'),
    join: await register(topics.joins, 'join'),
    deviceStatus: await register(topics.deviceStatus, 'device-status'),
    deviceLocation: await register(topics.deviceLocations, 'device-location'),
    downlinkOutcome: await register(topics.downlinkOutcomes, 'downlink-outcome'),
    orphanUplink: await register(topics.orphanUplinks, 'orphan-uplink'),
    deadLetter: await register(topics.deadLetter, 'dead-letter'),
  };
  const sink = await startBatchingKafkaSink(kafka, { maxBatchRecords: batch });
  const directory = new DeviceDirectory(pool);
  try {
    // Three sets of distinct events (each `handle` run needs its own, or dedup would drop them).
    const n = count;
    const bodies = (set: number, encoding: 'json' | 'protobuf') =>
      Array.from({ length: n }, (_, i) =>
        encodeEvent(
          'up',
          uplinkEvent({
            devEui: devEuis[i % devices]!,
            fCnt: set * 1_000_000 + Math.floor(i / devices) + 1,
            fPort: 102,
            payload: tbms100Payload(i % 2 === 0),
          }),
          encoding,
        ),
      );
    const json = bodies(0, 'json');
    const protobuf = bodies(0, 'protobuf');
    const now = Date.now();
    const events = json.map((b) => parseChirpStackEvent('up', b, 'json', now) as UpEvent);
    for (const devEui of devEuis) await directory.resolve(devEui);
    const device = (await directory.resolve(devEuis[0]!))!;
    const records: UplinkRecord[] = events.map((event) => {
      const uplink = toParsedUplink(event);
      const { codec, reading } = decodeReading(device.codec ?? '', uplink.fPort, uplink.payload, undefined);
      return {
        eventId: event.eventId,
        devEui: event.devEui,
        time: event.time,
        receivedAt: now,
        source: 'MQTT',
        applicationId: event.applicationId,
        tenantId: device.tenantId,
        spaceId: device.spaceId,
        fCnt: uplink.fCnt,
        fPort: uplink.fPort,
        codec,
        ...reading,
        rssi: uplink.rssi,
        snr: uplink.snr,
        gatewayIds: uplink.gatewayIds,
        payload: uplink.payload,
      };
    });
    const values = await Promise.all(records.map((r) => serdes.uplink.encode(r)));
    const dedup = new Deduplicator({ maxEntries: 100_000, ttlMs: 600_000 });
    const acknowledged: BridgeSink = { send: () => Promise.resolve() };
    const bridgeWith = (s: BridgeSink) =>
      createBridge({
        resolveDevice: (devEui) => directory.resolve(devEui),
        sink: s,
        serdes,
        topics,
        dedup: new Deduplicator({ maxEntries: 100_000, ttlMs: 600_000 }),
        orphans: new MemoryOrphanSink(),
        metrics: createIngestMetrics(),
        logger,
      });
    const handle = (bridge: ReturnType<typeof bridgeWith>, set: Buffer[]) => (i: number) =>
      bridge.handle({
        source: 'MQTT',
        eventType: 'up',
        origin: 'bench',
        body: set[i]!,
        receivedAt: Date.now(),
      });
    const nullBridge = bridgeWith(acknowledged);
    const realBridge = bridgeWith(sink);
    const set1 = bodies(1, 'json');
    const set2 = bodies(2, 'json');
    return [
      await cost('parse: JSON.parse only', n, (i) => JSON.parse(json[i]!.toString('utf8'))),
      await cost('parse: JSON event (JSON.parse + zod + normalise)', n, (i) =>
        parseChirpStackEvent('up', json[i]!, 'json', now),
      ),
      await cost('parse: protobuf event (decode + zod + normalise)', n, (i) =>
        parseChirpStackEvent('up', protobuf[i]!, 'protobuf', now),
      ),
      await cost('resolve: device directory (cache hit)', n, (i) => directory.resolve(devEuis[i % devices]!)),
      await cost('dedup: claim + commit (local window)', n, async (i) => {
        const claim = await dedup.begin([`id:${events[i]!.eventId}`, `fcnt:${i}`]);
        await claim?.commit();
      }),
      await cost('decode: uplink view + codec', n, (i) => {
        const uplink = toParsedUplink(events[i]!);
        return decodeReading(device.codec ?? '', uplink.fPort, uplink.payload, uplink.object);
      }),
      await cost('Avro encode: registry.encode (schema lookup + framing, async)', n, (i) =>
        registry.encode(serdes.uplink.schemaId, records[i]!),
      ),
      await cost('Avro encode: compiled writer schema (encodeSync)', n, (i) =>
        serdes.uplink.encodeSync(records[i]!),
      ),
      ...(await sequential(
        [batch, 128, 32].map(
          (inFlight) => () =>
            cost(
              `produce: batching sink -> broker (${inFlight} sends in flight)`,
              n,
              (i) => sink.send(topics.uplinks, [{ key: records[i]!.devEui, value: values[i]! }]),
              inFlight,
            ),
        ),
      )),
      await cost('handle, sink acknowledges at once (1 at a time)', n, handle(nullBridge, set1)),
      await cost(`handle, batching sink -> broker (${batch} in flight)`, n, handle(realBridge, set2), batch),
    ];
  } finally {
    await sink.stop();
    await pool.end();
  }
}

export function formatIngestStages(stages: StageCost[]): string[] {
  const width = Math.max(...stages.map((s) => s.stage.length));
  return [
    `ingest bridge, cost per event by stage (this process; CPU and wall time, µs):`,
    ...stages.map(
      (s) =>
        `  ${s.stage.padEnd(width)}  ${s.cpuMicros.toFixed(1).padStart(7)} CPU  ${s.wallMicros.toFixed(1).padStart(7)} wall`,
    ),
  ];
}
