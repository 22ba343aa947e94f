import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { eventually } from '../lib/testing/fixtures.js';
import { Deduplicator } from './dedup.js';
import { createRedisDedupStore } from './redis-dedup-store.js';

/** The shared dedup store against the real local Redis, two connections standing for two bridge instances. */
const config = loadConfig();
const prefix = `test:dedup:${randomUUID().slice(0, 8)}:`;
let one: Redis;
let two: Redis;

beforeAll(async () => {
  const connect = async () => {
    const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, enableAutoPipelining: true });
    await new Promise((resolve) => redis.once('ready', resolve));
    return redis;
  };
  one = await connect();
  two = await connect();
  // A fresh script cache, so the first claim exercises the NOSCRIPT -> EVAL path too.
  await one.script('FLUSH');
});
afterAll(() => {
  one?.disconnect();
  two?.disconnect();
});

describe('Redis dedup store', () => {
  it('of two instances claiming the same keys at once, exactly one gets them', async () => {
    const a = createRedisDedupStore(one, prefix);
    const b = createRedisDedupStore(two, prefix);
    const keys = Array.from({ length: 100 }, (_, i) => [`id:race-${i}`, `fcnt:t:D:A:${i}`]);
    const answers = await Promise.all(
      keys.map((k) => Promise.all([a.claim(k, 'token-a', 5_000), b.claim(k, 'token-b', 5_000)])),
    );
    expect(answers.map((pair) => [...pair].sort())).toEqual(keys.map(() => ['claimed', 'in-flight']));
  });

  it('done wins over a claim; complete writes 1 with the TTL; release drops only its own claim', async () => {
    const a = createRedisDedupStore(one, prefix);
    const b = createRedisDedupStore(two, prefix);
    expect(await a.claim(['id:x', 'fcnt:x'], 'token-a', 5_000)).toBe('claimed');
    expect(await one.get(`${prefix}id:x`)).toBe('token-a');
    const pttl = await one.pttl(`${prefix}id:x`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await b.release(['id:x'], 'token-b');
    expect(await one.get(`${prefix}id:x`)).toBe('token-a');
    await a.complete(['id:x', 'fcnt:x'], 600);
    expect(await one.get(`${prefix}fcnt:x`)).toBe('1');
    expect(await one.ttl(`${prefix}fcnt:x`)).toBeGreaterThan(590);
    // A different event sharing one done key (same fCnt, new deduplicationId) is a duplicate.
    expect(await b.claim(['id:y', 'fcnt:x'], 'token-b', 5_000)).toBe('done');
    expect(await one.exists(`${prefix}id:y`)).toBe(0);
    await a.release(['id:x'], 'token-a');
    expect(await one.get(`${prefix}id:x`)).toBe('1');
  });

  it("an instance that stopped mid-publish does not block the key for longer than its claim's in-flight time", async () => {
    const a = createRedisDedupStore(one, prefix);
    const b = createRedisDedupStore(two, prefix);
    expect(await a.claim(['id:crashed'], 'token-a', 200)).toBe('claimed');
    expect(await b.claim(['id:crashed'], 'token-b', 5_000)).toBe('in-flight');
    await eventually(
      () => b.claim(['id:crashed'], 'token-b', 5_000),
      (state) => state === 'claimed',
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    expect(await one.get(`${prefix}id:crashed`)).toBe('token-b');
  });

  it('a copy on another instance waits for the first one: publishes itself when the first failed, else is a duplicate', async () => {
    const a = new Deduplicator({
      maxEntries: 100,
      ttlMs: 60_000,
      shared: createRedisDedupStore(one, prefix),
    });
    const b = new Deduplicator({
      maxEntries: 100,
      ttlMs: 60_000,
      shared: createRedisDedupStore(two, prefix),
    });

    const failing = await a.begin(['id:fails']);
    const waiting = b.begin(['id:fails']);
    failing!.abort();
    const takeover = await waiting;
    expect(takeover).not.toBeNull();
    await takeover!.commit();
    expect(await one.get(`${prefix}id:fails`)).toBe('1');

    const durable = await a.begin(['id:ok']);
    const copy = b.begin(['id:ok']);
    await durable!.commit();
    expect(await copy).toBeNull();
  });
});
