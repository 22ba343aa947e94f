/**
 * The bridge's own throughput on the local stack: ChirpStack-format uplinks into the ingest service over MQTT
 * (QoS 1) and over HTTP (`POST /chirpstack/events`), until Kafka acknowledged each as an Avro record — next to
 * the raw kafkajs produce rate (idempotent producer, acks = -1, batches of 500 records of the same size) on
 * the same broker in the same run. Bounded: `count` uplinks per source and `timeoutMs`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { testTopics } from '../e2e/pipeline.js';
import { start } from '../ingest/service.js';
import { total } from '../ingest/metrics.js';
import {
  encodeEvent,
  publishUplink,
  tbms100Payload,
  uplinkEvent,
} from '../ingest/simulator/chirpstack-sim.js';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTopic } from '../lib/testing/kafka-control.js';
import { createBenchTenant } from './pipeline-throughput.js';

export interface IngestThroughputResult {
  count: number;
  rawKafkaPerSecond: number;
  mqttPerSecond: number;
  httpPerSecond: number;
}

async function within<T>(deadline: number, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function ingestThroughput({ count = 5_000, devices = 200, timeoutMs = 120_000 } = {}) {
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
  const publisher = await mqtt.connectAsync(config.mqtt.url, { clientId: `pub-${run}` });
  const uplink = (i: number) => ({
    devEui: devEuis[i % devices]!,
    fCnt: Math.floor(i / devices) + 1,
    fPort: 102,
    payload: tbms100Payload(i % 2 === 0),
    time: new Date(Date.now() - count + i),
  });
  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
  try {
    // Raw kafkajs: the ceiling for this broker and machine, with records the size of an Avro uplink.
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const value = randomBytes(140);
    let started = performance.now();
    for (let i = 0; i < count; i += 500) {
      const messages = Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
        key: devEuis[(i + j) % devices]!,
        value,
      }));
      await producer.send({ topic: rawTopic, acks: -1, messages });
    }
    const rawKafkaPerSecond = rate(count, performance.now() - started);
    await producer.disconnect();

    // MQTT: publish with up to 1,000 PUBLISHes awaiting their PUBACK, measure until Kafka acknowledged all.
    started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p = publishUplink(publisher, uplink(i)).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 1_000) await Promise.race(inFlight);
    }
    await within(
      deadline,
      () => total(ingest.metrics.published),
      (n) => n >= count,
    );
    const mqttPerSecond = rate(count, performance.now() - started);

    // HTTP: 64 concurrent keep-alive clients, as many ChirpStack integration workers would be.
    const url = `http://127.0.0.1:${ingest.httpPort}/chirpstack/events?event=up`;
    const bodies = Array.from({ length: count }, (_, i) =>
      Uint8Array.from(
        encodeEvent('up', uplinkEvent({ ...uplink(i), fCnt: uplink(i).fCnt + 1_000_000 }), 'json'),
      ),
    );
    let next = 0;
    let failed = 0;
    started = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < count) {
          const body = bodies[next++]!;
          const response = await fetch(url, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json' },
          });
          await response.arrayBuffer();
          if (response.status !== 200) failed++;
        }
      }),
    );
    const httpPerSecond = rate(count, performance.now() - started);
    if (failed > 0) throw new Error(`${failed} HTTP events were not acknowledged`);
    return { count, rawKafkaPerSecond, mqttPerSecond, httpPerSecond };
  } finally {
    await publisher.endAsync();
    await ingest.stop();
    await pool.end();
  }
}
