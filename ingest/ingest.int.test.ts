import { randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Redis } from 'ioredis';
import type { Consumer, Producer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testTopics } from '../e2e/pipeline.js';
import { loadConfig } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { createLogger } from '../lib/logger.js';
import { createTestTenant, eventually, type TestTenant } from '../lib/testing/fixtures.js';
import { createTestTopic, kafkaControl } from '../lib/testing/kafka-control.js';
import { discardMqttSessions } from '../lib/testing/mqtt-session.js';
import type { ChirpStackEventType, EventEncoding } from './chirpstack/event-types.js';
import { outcomeCounts, total } from './metrics.js';
import { start } from './service.js';
import {
  ackEvent,
  encodeEvent,
  joinEvent,
  locationEvent,
  logEvent,
  publishEvent,
  statusEvent,
  tbms100Payload,
  txAckEvent,
  uplinkEvent,
} from './simulator/chirpstack-sim.js';

/**
 * The bridge against the real local services: events in ChirpStack's own formats (JSON with defaults omitted,
 * and protobuf) over real MQTT, HTTP and a Kafka topic, read back from Kafka as Avro with a fresh Schema
 * Registry client. Each run has its own topics, MQTT client id, consumer groups and tenant.
 */
const config = loadConfig();
const logger = createLogger('ingest-int', 'silent');
const run = randomUUID().slice(0, 8);
const topics = testTopics(run);
const chirpstackTopic = `test-chirpstack-${run}`;
const control = config.kafka.controlPort;

type Ingest = Awaited<ReturnType<typeof start>>;
let tenant: TestTenant;
let pool: Pool;
let redis: Redis;
let ingest: Ingest;
let publisher: MqttClient;
let reader: Consumer;
let chirpstackProducer: Producer;
const seen: Array<{ topic: string; key: string; record: Record<string, unknown> }> = [];

const recordsOn = (topic: string, eventIds: Iterable<string>) => {
  const ids = new Set(eventIds);
  return seen.filter((s) => s.topic === topic && ids.has(String(s.record['eventId'])));
};
const url = (event: string) => `http://127.0.0.1:${ingest.httpPort}/chirpstack/events?event=${event}`;
const post = (event: string, body: Buffer | string, contentType = 'application/json') =>
  fetch(url(event), {
    method: 'POST',
    body: typeof body === 'string' ? body : Uint8Array.from(body),
    headers: { 'content-type': contentType },
  });
const contentTypeOf = (e: EventEncoding) => (e === 'json' ? 'application/json' : 'application/protobuf');
const up = (fCnt: number, deduplicationId = randomUUID(), devEui = tenant.devEui) =>
  uplinkEvent({ devEui, fCnt, fPort: 102, payload: tbms100Payload(fCnt % 2 === 0), deduplicationId });
const idOf = (event: Record<string, unknown>) => String(event['deduplicationId']);

const counts = () => outcomeCounts(ingest.metrics);
const delta = (before: Awaited<ReturnType<typeof counts>>, after: Awaited<ReturnType<typeof counts>>) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));

beforeAll(async () => {
  tenant = await createTestTenant();
  await createTestTopic(control, topics.uplinks, 3);
  for (const t of [
    topics.deadLetter,
    topics.joins,
    topics.deviceStatus,
    topics.deviceLocations,
    topics.downlinkOutcomes,
    topics.orphanUplinks,
    chirpstackTopic,
  ])
    await createTestTopic(control, t, 1);
  pool = createPool(config.postgres.pipelineUrl, `ingest-int-${run}`, 4);
  redis = new Redis(config.redisUrl, { enableOfflineQueue: false, enableAutoPipelining: true });
  await new Promise((resolve) => redis.once('ready', resolve));
  ingest = await start({
    config: {
      mqtt: { ...config.mqtt, clientId: `ingest-int-${run}` },
      topics,
      ingest: {
        ...config.ingest,
        host: '127.0.0.1',
        httpPort: 0,
        bodyLimitBytes: 4_096,
        chirpstackKafka: { topic: chirpstackTopic, groupId: `cs-${run}` },
      },
    },
    logger,
    pipelinePool: pool,
    kafka: createKafka(config.kafka, logger, `ingest-int-${run}`),
    registry: createSchemaRegistry(config.schemaRegistry),
    redis,
  });
  publisher = await mqtt.connectAsync(config.mqtt.url, { clientId: `ingest-int-pub-${run}` });
  const fresh = new SchemaRegistry({ host: config.schemaRegistry.url });
  const kafka = createKafka(config.kafka, logger, `ingest-int-reader-${run}`);
  reader = kafka.consumer({ groupId: `ingest-int-reader-${run}`, maxWaitTimeInMs: 100 });
  await reader.connect();
  await reader.subscribe({ topics: Object.values(topics), fromBeginning: true });
  await reader.run({
    eachMessage: async ({ topic, message }) => {
      if (!message.value) return;
      const record = (await fresh.decode(message.value)) as Record<string, unknown>;
      seen.push({ topic, key: message.key?.toString() ?? '', record });
    },
  });
  chirpstackProducer = kafka.producer();
  await chirpstackProducer.connect();
});

afterAll(async () => {
  await kafkaControl(control, 'up 1').catch(() => {});
  await publisher?.endAsync();
  await chirpstackProducer?.disconnect();
  await reader?.disconnect();
  await ingest?.stop();
  await discardMqttSessions(config.mqtt.url, [`ingest-int-${run}`]);
  await pool?.end();
  redis?.disconnect();
});

describe('ingest bridge over MQTT', () => {
  it('routes every ChirpStack event type, JSON and protobuf, to its topic as Avro readable by a fresh registry client', async () => {
    const orphanEui = 'FFEE' + randomUUID().replace(/-/g, '').slice(0, 12).toUpperCase();
    const sent: Array<[ChirpStackEventType, Record<string, unknown>, EventEncoding]> = [
      ['up', up(1), 'json'],
      ['up', up(2), 'protobuf'],
      ['up', up(1, randomUUID(), orphanEui), 'protobuf'],
      ['join', joinEvent({ devEui: tenant.devEui, devAddr: '0a0b0c0d' }), 'protobuf'],
      ['status', statusEvent({ devEui: tenant.devEui, margin: 9, batteryLevel: 55 }), 'json'],
      ['ack', ackEvent({ devEui: tenant.devEui, acknowledged: false, fCntDown: 4 }), 'json'],
      ['txack', txAckEvent({ devEui: tenant.devEui, downlinkId: 77, fCntDown: 4 }), 'protobuf'],
      [
        'location',
        locationEvent({ devEui: tenant.devEui, latitude: 52.1, longitude: 4.3, source: 'GPS' }),
        'json',
      ],
      [
        'log',
        logEvent({ devEui: tenant.devEui, level: 'ERROR', code: 'UPLINK_CODEC', description: 'x' }),
        'json',
      ],
    ];
    const before = await counts();
    for (const [type, event, encoding] of sent) await publishEvent(publisher, type, event, encoding);
    await eventually(
      counts,
      (c) =>
        c.received - before.received === sent.length &&
        c.published + c.deadLettered + c.ignored - before.published - before.deadLettered - before.ignored ===
          sent.length,
    );
    const ups = await eventually(
      async () => recordsOn(topics.uplinks, [idOf(sent[0]![1]), idOf(sent[1]![1])]),
      (r) => r.length === 2,
    );
    expect(ups.map((u) => u.key)).toEqual([tenant.devEui, tenant.devEui]);
    expect(ups.map((u) => u.record).sort((a, b) => Number(a['fCnt']) - Number(b['fCnt']))).toMatchObject([
      {
        tenantId: tenant.tenantId,
        spaceId: tenant.spaceId,
        source: 'MQTT',
        fCnt: 1,
        occupied: false,
        codec: 'browan-tbms100',
        rssi: -97,
      },
      { tenantId: tenant.tenantId, fCnt: 2, occupied: true, batteryVolts: 3.6 },
    ]);
    const byTopic = async (topic: string, n: number) =>
      (
        await eventually(
          async () => seen.filter((s) => s.topic === topic),
          (r) => r.length >= n,
        )
      ).map((s) => s.record);
    expect(await byTopic(topics.orphanUplinks, 1)).toMatchObject([
      { devEui: orphanEui, tenantId: null, fCnt: 1, chirpstackTenantName: 'ChirpStack' },
    ]);
    expect(ingest.orphans).toBeDefined();
    expect(await byTopic(topics.joins, 1)).toMatchObject([
      { tenantId: tenant.tenantId, devAddr: '0a0b0c0d' },
    ]);
    expect(await byTopic(topics.deviceStatus, 1)).toMatchObject([
      { margin: 9, batteryLevel: 55, externalPowerSource: false },
    ]);
    const outcomes = await byTopic(topics.downlinkOutcomes, 2);
    expect(outcomes.map((o) => o['kind']).sort()).toEqual(['ACK', 'TXACK']);
    expect(outcomes.find((o) => o['kind'] === 'ACK')).toMatchObject({ acknowledged: false, fCntDown: 4 });
    expect(outcomes.find((o) => o['kind'] === 'TXACK')).toMatchObject({ downlinkId: 77, acknowledged: null });
    expect(await byTopic(topics.deviceLocations, 1)).toMatchObject([
      { eventId: idOf(sent[7]![1]), tenantId: tenant.tenantId, latitude: 52.1, locationSource: 'GPS' },
    ]);
  });

  it('a burst of copies from three gateways (same deduplicationId, or same fCnt) becomes exactly one record', async () => {
    const id = randomUUID();
    const gateways = ['0016c001ff10a235', '0016c001ff10a236', '0016c001ff10a237'];
    const copies = gateways.map((g) => ({ ...up(1000, id), rxInfo: [{ gatewayId: g, rssi: -100, snr: 5 }] }));
    const sameFCnt = up(1000); // a late copy ChirpStack gave a new deduplicationId
    const before = await counts();
    await Promise.all([
      ...copies.map((c, i) => publishEvent(publisher, 'up', c, i === 1 ? 'protobuf' : 'json')),
      publishEvent(publisher, 'up', sameFCnt, 'json'),
    ]);
    await post('up', JSON.stringify(copies[0]));
    const after = await eventually(
      counts,
      (c) =>
        c.received - before.received === 5 &&
        c.published + c.deduplicated - before.published - before.deduplicated === 5,
    );
    expect(delta(before, after)).toMatchObject({
      received: 5,
      published: 1,
      deduplicated: 4,
      deadLettered: 0,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(recordsOn(topics.uplinks, [id, idOf(sameFCnt)])).toHaveLength(1);
    expect(await redis.exists(`ingest:dedup:id:${id}`)).toBe(1);
  });

  it('dead-letters a corpus of malformed inputs with their codes and original bytes; nothing is lost', async () => {
    const valid = up(2000);
    // Built twice (MQTT, HTTP): the decode failure is a valid event (id, fCnt), so a second copy would be a duplicate.
    const build = (copy: number): Array<[string, Buffer, string]> => [
      ['up', Buffer.from('not json at all {'), 'PAYLOAD_INVALID'],
      ['up', Buffer.from('{"deduplicationId":"x"'), 'PAYLOAD_INVALID'],
      ['up', Buffer.from('{}'), 'PAYLOAD_INVALID'],
      ['up', Buffer.from(JSON.stringify({ ...valid, deviceInfo: { devEui: 'zz' } })), 'PAYLOAD_INVALID'],
      ['up', Buffer.from(JSON.stringify({ ...valid, deduplicationId: 'nope' })), 'PAYLOAD_INVALID'],
      ['up', Buffer.from(JSON.stringify({ ...valid, time: 'yesterday' })), 'PAYLOAD_INVALID'],
      ['status', Buffer.from([0x0a, 0xff, 0xff, 0xff]), 'PAYLOAD_INVALID'],
      ['integration', Buffer.from('{}'), 'EVENT_UNSUPPORTED'],
      ['up', Buffer.from(JSON.stringify(up(2001, randomUUID()))).subarray(0, 40), 'PAYLOAD_INVALID'],
      [
        'up',
        encodeEvent(
          'up',
          { ...up(2002 + copy), data: Buffer.from([0xff]).toString('base64'), fPort: 102 },
          'json',
        ),
        'DECODE_FAILED',
      ],
    ];
    const corpus = build(0);
    const before = await counts();
    const appId = 'app-' + run;
    for (const [type, body] of corpus) {
      await publisher.publishAsync(
        `application/${appId}/device/${tenant.devEui.toLowerCase()}/event/${type}`,
        body,
        { qos: 1 },
      );
    }
    const httpAnswers = [];
    for (const [type, body, code] of build(1)) {
      const response = await post(type, body, 'application/json');
      httpAnswers.push({
        status: response.status,
        type: response.headers.get('content-type'),
        body: (await response.json()) as Record<string, unknown>,
        code,
      });
    }
    for (const a of httpAnswers) {
      expect(a.status).toBe(400);
      expect(a.type).toContain('application/problem+json');
      expect(a.body).toMatchObject({ code: a.code, deadLettered: true });
    }
    const n = corpus.length * 2;
    const after = await eventually(counts, (c) => c.deadLettered - before.deadLettered === n);
    expect(delta(before, after)).toMatchObject({ received: n, deadLettered: n, published: 0 });
    const dead = await eventually(
      async () =>
        seen.filter(
          (s) =>
            s.topic === topics.deadLetter &&
            (String(s.record['origin']).includes(appId) ||
              String(s.record['origin']).startsWith('/chirpstack')),
        ),
      (r) => r.length >= n,
    );
    const codes = dead.map((d) => d.record['errorCode']).sort();
    expect(codes).toEqual(corpus.flatMap(([, , code]) => [code, code]).sort());
    // The original bytes are kept; HTTP declared JSON, MQTT says nothing, so the first byte decided (protobuf).
    const notJson = dead.filter(
      (d) => Buffer.from(d.record['original'] as Buffer).toString() === 'not json at all {',
    );
    expect(
      notJson
        .map((d) => [String(d.record['origin']).startsWith('/chirpstack'), d.record['contentType']])
        .sort(),
    ).toEqual([
      [false, 'application/protobuf'],
      [true, 'application/json'],
    ]);
  });
});

describe('ingest bridge over HTTP', () => {
  it('answers 200 after the event is durable, for JSON and protobuf bodies, with ChirpStack defaults omitted', async () => {
    const json = up(3000);
    const proto = up(3001);
    const join = joinEvent({ devEui: tenant.devEui });
    const responses = [
      await post('up', JSON.stringify(json)),
      await post('up', encodeEvent('up', proto, 'protobuf'), 'application/octet-stream'),
      await post('join', encodeEvent('join', join, 'protobuf'), contentTypeOf('protobuf')),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await responses[0]!.json()).toEqual({ outcome: 'published', eventId: idOf(json) });
    // 200 means durable: the records are on Kafka (reading them only waits for the reader's fetch).
    const records = await eventually(
      async () => recordsOn(topics.uplinks, [idOf(json), idOf(proto)]),
      (r) => r.length === 2,
    );
    expect(records.every((r) => r.record['source'] === 'HTTP')).toBe(true);
  });

  it('refuses a body over the limit with 413 problem+json and a clear message', async () => {
    const response = await post('up', JSON.stringify({ padding: 'x'.repeat(10_000) }));
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      detail: expect.stringContaining('4096 bytes'),
    });
  });
});

describe('ChirpStack Kafka integration as a source', () => {
  it('publishes events from the integration topic (event header or key) and drops a copy already seen on MQTT', async () => {
    const viaKafka = up(4000);
    const alsoOnMqtt = up(4001);
    await publishEvent(publisher, 'up', alsoOnMqtt, 'json');
    const key = (_e: Record<string, unknown>) =>
      `application.app.device.${tenant.devEui.toLowerCase()}.event.up`;
    await chirpstackProducer.send({
      topic: chirpstackTopic,
      messages: [
        { key: key(viaKafka), value: encodeEvent('up', viaKafka, 'protobuf'), headers: { event: 'up' } },
        { key: key(alsoOnMqtt), value: encodeEvent('up', alsoOnMqtt, 'json') },
      ],
    });
    const records = await eventually(
      async () => recordsOn(topics.uplinks, [idOf(viaKafka), idOf(alsoOnMqtt)]),
      (r) => r.length >= 2,
    );
    await eventually(
      async () => total(ingest.metrics.received),
      () => true,
    );
    const fromKafka = records.filter((r) => r.record['source'] === 'KAFKA');
    expect(fromKafka.map((r) => r.record['eventId'])).toEqual([idOf(viaKafka)]);
    await new Promise((r) => setTimeout(r, 500));
    expect(recordsOn(topics.uplinks, [idOf(alsoOnMqtt)])).toHaveLength(1);
  });
});

describe('faults', () => {
  it('with the Kafka broker down: not ready, HTTP answers 503 with Retry-After, MQTT is not acknowledged; back up, nothing is lost', async () => {
    const before = await counts();
    await kafkaControl(control, 'down 1');
    try {
      await eventually(
        () => fetch(`http://127.0.0.1:${ingest.httpPort}/ready`).then((r) => r.status),
        (s) => s === 503,
      );
      const started = Date.now();
      const refused = await post('up', JSON.stringify(up(5000)));
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(Date.now() - started).toBeLessThan(4_900);
      const burst = Array.from({ length: 300 }, (_, i) => up(6000 + i));
      for (const e of burst) await publishEvent(publisher, 'up', e, i(e) % 2 === 0 ? 'json' : 'protobuf');
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await counts()).published - before.published).toBe(0);
      await kafkaControl(control, 'up 1');
      const after = await eventually(counts, (c) => c.published - before.published >= 300, {
        timeoutMs: 45_000,
      });
      const d = delta(before, after);
      expect(
        d['published']! + d['deadLettered']! + d['deduplicated']! + d['ignored']! + d['notAcknowledged']!,
      ).toBe(d['received']);
      const records = await eventually(
        async () => recordsOn(topics.uplinks, burst.map(idOf)),
        (r) => r.length >= 300,
        { timeoutMs: 30_000 },
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(new Set(records.map((r) => r.record['eventId'])).size).toBe(300);
      expect(recordsOn(topics.uplinks, burst.map(idOf))).toHaveLength(300);
      expect(d).toMatchObject({ published: 300, deadLettered: 0 });
      await eventually(
        () => fetch(`http://127.0.0.1:${ingest.httpPort}/ready`).then((r) => r.status),
        (s) => s === 200,
      );
    } finally {
      await kafkaControl(control, 'up 1');
    }
  });
});

function i(event: Record<string, unknown>): number {
  return Number(event['fCnt']);
}
