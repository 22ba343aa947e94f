import { describe, expect, it } from 'vitest';
import type { Pool } from '../lib/db/pool.js';
import { DeviceDirectory } from './device-directory.js';

/** A pool whose query answers from `rows` and counts calls; `gate` holds a query open. */
function fakePool(rows: () => Array<Record<string, unknown>>, gate?: Promise<void>) {
  const pool = {
    calls: 0,
    async query() {
      pool.calls += 1;
      const answer = rows();
      if (gate) await gate;
      return { rows: answer };
    },
  };
  return pool;
}

const row = (spaceId: string) => ({ tenant_id: 't', space_id: spaceId, codec: 'c' });

describe('DeviceDirectory', () => {
  it('serves a DevEUI from the cache until forget, whatever its case', async () => {
    let space = 's1';
    const pool = fakePool(() => [row(space)]);
    const directory = new DeviceDirectory(pool as unknown as Pool);
    expect(await directory.resolve('aabbccddeeff0011')).toMatchObject({ spaceId: 's1' });
    space = 's2';
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({ spaceId: 's1' });
    expect(pool.calls).toBe(1);
    directory.forget('aabbccddeeff0011');
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({ spaceId: 's2' });
  });

  it('does not cache a lookup that was in flight when an invalidation arrived', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let space = 'old';
    const pool = fakePool(() => [row(space)], gate);
    const directory = new DeviceDirectory(pool as unknown as Pool);
    const inFlight = directory.resolve('AABBCCDDEEFF0011'); // read 'old' before the change committed
    space = 'new';
    directory.forget('AABBCCDDEEFF0011'); // the change's notification
    open();
    expect(await inFlight).toMatchObject({ spaceId: 'old' });
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({ spaceId: 'new' });
    expect(pool.calls).toBe(2);
  });

  it('caches unknown devices too, and clear drops everything', async () => {
    const pool = fakePool(() => []);
    const directory = new DeviceDirectory(pool as unknown as Pool);
    expect(await directory.resolve('AABBCCDDEEFF0011')).toBeNull();
    expect(await directory.resolve('AABBCCDDEEFF0011')).toBeNull();
    expect(pool.calls).toBe(1);
    directory.clear();
    await directory.resolve('AABBCCDDEEFF0011');
    expect(pool.calls).toBe(2);
  });
});
