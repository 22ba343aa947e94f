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

function memoryStore(): SharedDedupStore & { keys: Set<string> } {
  const keys = new Set<string>();
  return {
    keys,
    anySeen: async (ks) => ks.some((k) => keys.has(k)),
    remember: async (ks) => void ks.forEach((k) => keys.add(k)),
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
    expect(store.keys.has('id:1')).toBe(true);
    expect(await b.begin(['id:1'])).toBeNull();
    const errors: unknown[] = [];
    const broken: SharedDedupStore = {
      anySeen: () => Promise.reject(new Error('redis down')),
      remember: () => Promise.reject(new Error('redis down')),
    };
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
