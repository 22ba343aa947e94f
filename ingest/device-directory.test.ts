import { describe, expect, it } from 'vitest';
import type { Pool } from '../lib/db/pool.js';
import { assignmentOf, DeviceDirectory, type DeviceRow } from './device-directory.js';

/** A pool whose query answers from `rows` and counts calls; `gate` holds a query open. */
function fakePool(rows: () => DeviceRow[], gate?: Promise<void>) {
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

const row = (spaceId: string, status = 'active'): DeviceRow => ({
  tenant_id: 't',
  space_id: spaceId,
  codec: 'c',
  kind: 'sensor',
  status,
});

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

describe('assignmentOf: what a device status means for its events', () => {
  const cases: Array<{ name: string; row: DeviceRow; want: Record<string, unknown> }> = [
    {
      name: 'active: tenant, space and codec',
      row: row('s1'),
      want: { tenantId: 't', spaceId: 's1', codec: 'c', kind: 'sensor', status: 'active' },
    },
    {
      name: 'inactive: still the tenant’s, not attributed to its space',
      row: row('s1', 'inactive'),
      want: { tenantId: 't', spaceId: null, codec: 'c', status: 'inactive' },
    },
    {
      name: 'decommissioned: kept so the bridge can refuse it with the former tenant',
      row: row('s1', 'decommissioned'),
      want: { tenantId: 't', spaceId: null, status: 'decommissioned' },
    },
    {
      name: 'an inactive display keeps its tenant (its downlink outcomes still flow)',
      row: { ...row('s1', 'inactive'), kind: 'display', codec: null },
      want: { tenantId: 't', spaceId: null, kind: 'display', status: 'inactive' },
    },
    {
      name: 'a status this code does not know counts as decommissioned (refused, never misattributed)',
      row: row('s1', 'retired'),
      want: { tenantId: 't', spaceId: null, status: 'decommissioned' },
    },
  ];
  it.each(cases)('$name', ({ row: r, want }) => {
    expect(assignmentOf(r)).toMatchObject(want);
  });

  it('a status change reaches a cached assignment through forget (the sensor_devices_changed notification)', async () => {
    let status = 'active';
    const pool = fakePool(() => [row('s1', status)]);
    const directory = new DeviceDirectory(pool as unknown as Pool);
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({ status: 'active', spaceId: 's1' });
    status = 'decommissioned';
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({ status: 'active' });
    directory.forget('AABBCCDDEEFF0011');
    expect(await directory.resolve('AABBCCDDEEFF0011')).toMatchObject({
      status: 'decommissioned',
      spaceId: null,
    });
  });
});
