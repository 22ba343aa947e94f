import { describe, expect, it } from 'vitest';
import { Deduplicator, TtlWindow, type SharedDedupStore } from './dedup.js';

describe('TtlWindow', () => {
  it('forgets a key after its TTL and never holds more than maxEntries', () => {
    let now = 0;
    const window = new TtlWindow(2, 100, () => now);
    window.add('a');
    now = 50;
    window.add('b');
    expect(window.has('a')).toBe(true);
    now = 120;
    expect(window.has('a')).toBe(false);
    expect(window.has('b')).toBe(true);
    window.add('c');
    window.add('d');
    expect(window.size).toBeLessThanOrEqual(2);
    expect(window.has('b')).toBe(false);
    expect(window.has('d')).toBe(true);
  });
});

/** The shared store's contract in memory: value 'done' or a claim token; expiry is not modelled. */
function memoryStore(): SharedDedupStore & { keys: Map<string, string> } {
  const keys = new Map<string, string>();
  return {
    keys,
    async claim(ks, token) {
      if (ks.some((k) => keys.get(k) === 'done')) return 'done';
      if (ks.some((k) => keys.has(k) && keys.get(k) !== token)) return 'in-flight';
      for (const k of ks) keys.set(k, token);
      return 'claimed';
    },
    complete: async (ks) => void ks.forEach((k) => keys.set(k, 'done')),
    async release(ks, token) {
      for (const k of ks) if (keys.get(k) === token) keys.delete(k);
    },
  };
}

describe('Deduplicator', () => {
  it('lets the first copy through and drops a later copy sharing any key', async () => {
    const dedup = new Deduplicator({ maxEntries: 100, ttlMs: 60_000 });
    const claim = await dedup.begin(['id:1', 'fcnt:t:D:A:7']);
    expect(claim).not.toBeNull();
    await claim!.commit();
    expect(await dedup.begin(['id:1'])).toBeNull();
    expect(await dedup.begin(['id:2', 'fcnt:t:D:A:7'])).toBeNull();
    expect(await dedup.begin(['id:3', 'fcnt:t:D:A:8'])).not.toBeNull();
  });

  it('makes a concurrent copy wait for the first: a duplicate once the first is durable', async () => {
    const dedup = new Deduplicator({ maxEntries: 100, ttlMs: 60_000 });
    const first = await dedup.begin(['id:1']);
    const second = dedup.begin(['id:1']);
    await first!.commit();
    expect(await second).toBeNull();
  });

  it('lets a waiting copy publish when the first copy failed: a failure never becomes a loss', async () => {
    const dedup = new Deduplicator({ maxEntries: 100, ttlMs: 60_000 });
    const first = await dedup.begin(['id:1']);
    const second = dedup.begin(['id:1']);
    first!.abort();
    const claim = await second;
    expect(claim).not.toBeNull();
    await claim!.commit();
    expect(dedup.pendingKeys).toBe(0);
  });

  it('agrees with other instances through the shared store, and publishes when the store fails', async () => {
    const store = memoryStore();
    const a = new Deduplicator({ maxEntries: 100, ttlMs: 60_000, shared: store });
    const b = new Deduplicator({ maxEntries: 100, ttlMs: 60_000, shared: store });
    await (await a.begin(['id:1']))!.commit();
    expect(store.keys.get('id:1')).toBe('done');
    expect(await b.begin(['id:1'])).toBeNull();
    const errors: unknown[] = [];
    const down = () => Promise.reject(new Error('redis down'));
    const broken: SharedDedupStore = { claim: down, complete: down, release: down };
    const c = new Deduplicator({
      maxEntries: 100,
      ttlMs: 60_000,
      shared: broken,
      onSharedError: (e) => errors.push(e),
    });
    const claim = await c.begin(['id:1']);
    expect(claim).not.toBeNull();
    await claim!.commit();
    expect(errors).toHaveLength(2);
    expect(await c.begin(['id:1'])).toBeNull();
  });
});

describe('Deduplicator across instances (shared claims)', () => {
  /** Two instances on one store; `sleep` counts the polls of a waiting copy and lets the test act between them. */
  function twoInstances(inFlightMs = 5_000) {
    const store = memoryStore();
    let now = 0;
    const polls: number[] = [];
    let onPoll: () => void = () => {};
    const options = (token: string) => ({
      maxEntries: 100,
      ttlMs: 60_000,
      shared: store,
      inFlightMs,
      now: () => now,
      token: () => token,
      sleep: async (ms: number) => {
        polls.push(ms);
        now += ms;
        onPoll();
      },
    });
    return {
      store,
      polls,
      a: new Deduplicator(options('claim-a')),
      b: new Deduplicator(options('claim-b')),
      setOnPoll: (f: () => void) => (onPoll = f),
      advance: (ms: number) => (now += ms),
    };
  }

  it('the second instance waits while the first publishes, then counts a duplicate', async () => {
    const t = twoInstances();
    const first = await t.a.begin(['id:1', 'fcnt:t:D:A:1']);
    expect(t.store.keys.get('id:1')).toBe('claim-a');
    let committed = false;
    t.setOnPoll(() => {
      if (t.polls.length === 3 && !committed) {
        committed = true;
        void first!.commit();
      }
    });
    expect(await t.b.begin(['id:2', 'fcnt:t:D:A:1'])).toBeNull();
    expect(t.polls).toEqual([2, 5, 10]);
    expect(t.store.keys.get('fcnt:t:D:A:1')).toBe('done');
  });

  it('the second instance publishes itself when the first one failed: nothing is lost', async () => {
    const t = twoInstances();
    const first = await t.a.begin(['id:1']);
    t.setOnPoll(() => {
      if (t.polls.length === 2) first!.abort();
    });
    const second = await t.b.begin(['id:1']);
    expect(second).not.toBeNull();
    expect(t.store.keys.get('id:1')).toBe('claim-b');
    await second!.commit();
    expect(t.store.keys.get('id:1')).toBe('done');
    expect(await t.a.begin(['id:1'])).toBeNull();
  });

  it('a release drops only the keys its own claim still holds', async () => {
    const t = twoInstances();
    const first = await t.a.begin(['id:1']);
    t.store.keys.set('id:1', 'claim-b'); // a's claim expired and b claimed the key
    first!.abort();
    await Promise.resolve();
    expect(t.store.keys.get('id:1')).toBe('claim-b');
  });

  it('stops waiting for a holder that never finishes (its claim expires) and publishes: a duplicate, not a loss', async () => {
    const errors: unknown[] = [];
    const store = memoryStore();
    store.keys.set('id:1', 'claim-of-a-crashed-instance');
    let now = 0;
    const dedup = new Deduplicator({
      maxEntries: 100,
      ttlMs: 60_000,
      shared: store,
      inFlightMs: 300,
      now: () => now,
      sleep: async (ms) => void (now += ms),
      onSharedError: (e) => errors.push(e),
    });
    expect(await dedup.begin(['id:1'])).not.toBeNull();
    expect(now).toBeGreaterThanOrEqual(1_300);
    expect(now).toBeLessThan(1_400);
    expect(errors).toHaveLength(1);
  });
});
