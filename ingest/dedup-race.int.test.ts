import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { eventually } from '../lib/testing/fixtures.js';
import type { EventEncoding } from './chirpstack/event-types.js';
import { outcomeCounts } from './metrics.js';
import type { start } from './service.js';
import { encodeEvent, publishEvent, tbms100Payload, uplinkEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';

/**
 * Two bridge instances (two ingest services, each with its own MQTT session, Kafka producer and Redis
 * connection) on the same topics, MQTT subscription, database and Redis: every event reaches both within
 * milliseconds, and exactly one of them publishes it. The other waits for the first one's claim to settle
 * and counts a duplicate.
 */
type Ingest = Awaited<ReturnType<typeof start>>;
const config = loadConfig();
let h: IngestHarness;
let a: Ingest;
let b: Ingest;
let publisher: MqttClient;
const redises: Redis[] = [];

async function connectRedis(): Promise<Redis> {
  const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, enableAutoPipelining: true });
  await new Promise((resolve) => redis.once('ready', resolve));
  redises.push(redis);
  return redis;
}

beforeAll(async () => {
  h = await startIngestHarness('dedup-race', { redis: await connectRedis() });
  a = h.ingest;
  b = await h.startPeer({ redis: await connectRedis() });
  publisher = await mqtt.connectAsync(config.mqtt.url, { clientId: `dedup-race-pub-${h.run}` });
});
afterAll(async () => {
  await publisher?.endAsync();
  await h?.stop();
  for (const redis of redises) redis.disconnect();
});

let fCnt = 0;
const up = () =>
  uplinkEvent({
    devEui: h.tenant.devEui,
    applicationId: h.applicationId,
    fCnt: ++fCnt,
    fPort: 102,
    payload: tbms100Payload(fCnt % 2 === 0),
    deduplicationId: randomUUID(),
  });
const idOf = (event: Record<string, unknown>) => String(event['deduplicationId']);

/** Both instances' outcome counters, summed. */
async function counts() {
  const [x, y] = [await outcomeCounts(a.metrics), await outcomeCounts(b.metrics)];
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v + y[k as keyof typeof y]])) as typeof x;
}
const delta = (before: Awaited<ReturnType<typeof counts>>, after: Awaited<ReturnType<typeof counts>>) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));

describe('two bridge instances racing on the same events', () => {
  it('over MQTT (both subscribed): exactly one Kafka record per event, every other copy counted as a duplicate', async () => {
    const events = Array.from({ length: 60 }, up);
    const before = await counts();
    for (const [i, e] of events.entries())
      await publishEvent(publisher, 'up', e, i % 2 === 0 ? 'json' : 'protobuf');
    const n = events.length;
    const after = await eventually(
      counts,
      (c) =>
        c.received - before.received === 2 * n &&
        c.published + c.deduplicated - before.published - before.deduplicated === 2 * n,
      { timeoutMs: 30_000 },
    );
    expect(delta(before, after)).toEqual({
      received: 2 * n,
      published: n,
      deduplicated: n,
      deadLettered: 0,
      ignored: 0,
      notAcknowledged: 0,
    });
    await eventually(
      async () => h.recordsOn(h.topics.uplinks, events.map(idOf)),
      (r) => r.length >= n,
    );
    // Let any second copy arrive before counting exactly.
    await new Promise((r) => setTimeout(r, 500));
    const records = h.recordsOn(h.topics.uplinks, events.map(idOf));
    expect(records).toHaveLength(n);
    expect(new Set(records.map((r) => r.record['eventId'])).size).toBe(n);
  });

  it('over HTTP (the same event posted to both at once): one answers published, the other deduplicated', async () => {
    const post = (ingest: Ingest, body: Buffer, encoding: EventEncoding) =>
      fetch(`http://127.0.0.1:${ingest.httpPort}/chirpstack/events?event=up`, {
        method: 'POST',
        body: Uint8Array.from(body),
        headers: { 'content-type': encoding === 'json' ? 'application/json' : 'application/protobuf' },
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { outcome: string } }));
    const events = Array.from({ length: 40 }, up);
    const before = await counts();
    const outcomes: string[][] = [];
    for (const [i, e] of events.entries()) {
      const encoding: EventEncoding = i % 2 === 0 ? 'json' : 'protobuf';
      const body = encodeEvent('up', e, encoding);
      const answers = await Promise.all([post(a, body, encoding), post(b, body, encoding)]);
      expect(answers.map((x) => x.status)).toEqual([200, 200]);
      outcomes.push(answers.map((x) => x.body.outcome).sort());
    }
    expect(outcomes).toEqual(events.map(() => ['deduplicated', 'published']));
    expect(delta(before, await counts())).toEqual({
      received: 2 * events.length,
      published: events.length,
      deduplicated: events.length,
      deadLettered: 0,
      ignored: 0,
      notAcknowledged: 0,
    });
    await eventually(
      async () => h.recordsOn(h.topics.uplinks, events.map(idOf)),
      (r) => r.length >= events.length,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(h.recordsOn(h.topics.uplinks, events.map(idOf))).toHaveLength(events.length);
  });
});
