/**
 * The bridge's own throughput on the local stack: ChirpStack-format uplinks into the ingest service over MQTT
 * (QoS 1) and over HTTP (`POST /chirpstack/events`), until Kafka acknowledged each as an Avro record — next to
 * the raw kafkajs produce rate (idempotent producer, acks = -1, batches of 500 records of the same size) on
 * the same broker in the same run (timed before and after the bridge's phases, averaged). The bridge runs in this process; the load generator runs in its own
 * (ingest-load-generator.ts), so this process's CPU time is the bridge's, reported per event. Bounded: `count`
 * uplinks per source and `timeoutMs`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { testTopics } from '../e2e/pipeline.js';
import type { EventEncoding } from '../ingest/chirpstack/event-types.js';
import { start } from '../ingest/service.js';
import { total } from '../ingest/metrics.js';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTopic } from '../lib/testing/kafka-control.js';
import { discardMqttSessions } from '../lib/testing/mqtt-session.js';
import type { GeneratorCommand, GeneratorReply, Phase } from './ingest-load-generator.js';
import { createBenchTenant } from './pipeline-throughput.js';

export interface Rate {
  perSecond: number;
  /** CPU time (user + system) of this process per event, µs: the bridge's cost, the generator excluded. */
  cpuMicrosPerEvent: number;
}

export interface IngestThroughputResult {
  count: number;
  encoding: EventEncoding;
  httpClients: number;
  /** Mean of `rawRuns`: raw produce timed before the bridge's phases and after them. */
  raw: Rate;
  rawRuns: [Rate, Rate];
  mqtt: Rate;
  http: Rate;
}

async function within<T>(deadline: number, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Starts the clock and this process's CPU counter; `stop` turns them into a Rate for `count` events. */
function measure(count: number): { stop(): Rate } {
  const started = performance.now();
  const cpu = process.cpuUsage();
  return {
    stop() {
      const ms = performance.now() - started;
      const used = process.cpuUsage(cpu);
      return {
        perSecond: Math.round((count / ms) * 1000),
        cpuMicrosPerEvent: Math.round((used.user + used.system) / count),
      };
    },
  };
}

/** The load generator process and a typed wait for its next reply. */
function startGenerator(deadline: number) {
  const child: ChildProcess = fork(new URL('./ingest-load-generator.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`load generator exited (${code})`))),
  );
  exited.catch(() => {});
  return {
    send: (command: GeneratorCommand) => child.send(command),
    async next(): Promise<GeneratorReply> {
      const reply = new Promise<GeneratorReply>((resolve) => child.once('message', resolve));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('benchmark timed out')),
          Math.max(0, deadline - Date.now()),
        );
      });
      try {
        return await Promise.race([reply, exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'exit' } satisfies GeneratorCommand);
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2_000))]);
      child.kill();
    },
  };
}

export async function ingestThroughput({
  count = 5_000,
  devices = 200,
  encoding = 'json' as EventEncoding,
  httpClients = 64,
  mqttWindow = 1_000,
  warmup = 2_000,
  timeoutMs = 120_000,
} = {}): Promise<IngestThroughputResult> {
  const config = loadConfig();
  const logger = createLogger('bench', 'error');
  const run = `bench-${randomUUID().slice(0, 8)}`;
  const deadline = Date.now() + timeoutMs;
  const topics = testTopics(run);
  const rawTopic = `bench-raw-${run}`;
  await createTestTopic(config.kafka.controlPort, topics.uplinks, 6);
  await createTestTopic(config.kafka.controlPort, rawTopic, 6);
  for (const t of [
    topics.deadLetter,
    topics.joins,
    topics.deviceStatus,
    topics.deviceLocations,
    topics.downlinkOutcomes,
    topics.orphanUplinks,
  ])
    await createTestTopic(config.kafka.controlPort, t, 1);
  const { devEuis } = await createBenchTenant(config.postgres.migrateUrl, devices);
  const pool = createPool(config.postgres.pipelineUrl, `bench-${run}`, 4);
  const kafka = createKafka(config.kafka, logger, run);
  const ingest = await start({
    config: {
      mqtt: { ...config.mqtt, clientId: `ingest-${run}` },
      topics,
      ingest: { ...config.ingest, host: '127.0.0.1', httpPort: 0 },
    },
    logger,
    pipelinePool: pool,
    kafka,
    registry: createSchemaRegistry(config.schemaRegistry),
  });
  const generator = startGenerator(deadline);
  try {
    generator.send({
      type: 'prepare',
      mqttUrl: config.mqtt.url,
      clientId: `pub-${run}`,
      httpUrl: `http://127.0.0.1:${ingest.httpPort}/chirpstack/events?event=up`,
      count,
      devEuis,
      encoding,
      mqttWindow,
      httpClients,
      warmup,
    });
    if ((await generator.next()).type !== 'ready') throw new Error('load generator not ready');

    // Raw kafkajs: the ceiling for this broker and machine, with records the size of an Avro uplink. Measured
    // before and after the bridge's phases (the machine is shared: load drifts during a run); ratios use the mean.
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const value = randomBytes(140);
    const produceRaw = async () => {
      const clock = measure(count);
      for (let i = 0; i < count; i += 500) {
        const messages = Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
          key: devEuis[(i + j) % devices]!,
          value,
        }));
        await producer.send({ topic: rawTopic, acks: -1, messages });
      }
      return clock.stop();
    };
    // Warm-up, untimed: raw produce once, then `warmup` uplinks per source through the bridge, so every
    // measurement below runs compiled code.
    await produceRaw();
    for (const phase of ['mqtt', 'http'] as const) {
      generator.send({ type: 'run', phase, warmup: true });
      const reply = await generator.next();
      if (reply.type !== 'done' || reply.failed > 0) throw new Error(`${phase} warm-up not acknowledged`);
    }
    await within(
      deadline,
      () => total(ingest.metrics.published),
      (n) => n >= 2 * warmup,
    );
    const rawBefore = await produceRaw();

    const runPhase = async (phase: Phase, done: () => Promise<void>) => {
      const clock = measure(count);
      generator.send({ type: 'run', phase });
      const reply = await generator.next();
      if (reply.type !== 'done' || reply.failed > 0) {
        throw new Error(`${phase}: ${reply.type === 'done' ? reply.failed : '?'} events not acknowledged`);
      }
      await done();
      return clock.stop();
    };
    // MQTT: until the bridge counted every record acknowledged by Kafka (the generator's PUBACKs follow).
    const mqtt = await runPhase('mqtt', async () => {
      await within(
        deadline,
        () => total(ingest.metrics.published),
        (n) => n >= 2 * warmup + count,
      );
    });
    // HTTP: each 200 is sent after Kafka acknowledged that event, so the generator finishing is the end.
    const http = await runPhase('http', async () => {});
    const rawAfter = await produceRaw();
    await producer.disconnect();
    const raw: Rate = {
      perSecond: Math.round((rawBefore.perSecond + rawAfter.perSecond) / 2),
      cpuMicrosPerEvent: Math.round((rawBefore.cpuMicrosPerEvent + rawAfter.cpuMicrosPerEvent) / 2),
    };
    return { count, encoding, httpClients, raw, rawRuns: [rawBefore, rawAfter], mqtt, http };
  } finally {
    await generator.stop();
    await ingest.stop();
    await discardMqttSessions(config.mqtt.url, [`ingest-${run}`]);
    await pool.end();
  }
}

export function formatIngestThroughput(r: IngestThroughputResult): string[] {
  const ratio = (rate: Rate) => (rate.perSecond / r.raw.perSecond).toFixed(2);
  const cpu = (rate: Rate) => `${rate.cpuMicrosPerEvent} µs CPU/event`;
  return [
    `ingest bridge, ${r.count} ${r.encoding} uplinks per source (ChirpStack event -> Avro record acknowledged by Kafka;`,
    `  load generator in its own process, CPU is the bridge process's):`,
    `  raw kafkajs produce   ${r.raw.perSecond} records/s (mean of ${r.rawRuns.map((x) => x.perSecond).join(' before, ')} after;`,
    `                        idempotent, acks=-1, batches of 500; ${cpu(r.raw)})`,
    `  bridge from MQTT      ${r.mqtt.perSecond} uplinks/s  (ratio to raw ${ratio(r.mqtt)}; ${cpu(r.mqtt)})`,
    `  bridge from HTTP      ${r.http.perSecond} uplinks/s  (ratio to raw ${ratio(r.http)}; ${r.httpClients} clients; ${cpu(r.http)})`,
  ];
}
