import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  outcome,
  plan,
  type CallResult,
  type DeviceSnapshot,
  type Outcome,
  type Plan,
  type Snapshot,
  type SyncItem,
} from './decide.js';

const options = { maxAttempts: 3, baseBackoffMs: 1_000, maxBackoffMs: 5_000 };
const item: SyncItem = {
  tenantId: '11111111-1111-4111-8111-111111111111',
  kind: 'device',
  eui: '70B3D57ED0000001',
  version: 4,
  inChirpstack: false,
  attempts: 0,
};
const device: DeviceSnapshot = {
  kind: 'device',
  devEui: '70B3D57ED0000001',
  name: null,
  category: 'sensor',
  applicationId: 'app-1',
  deviceProfileId: 'profile-1',
  disabled: false,
};

describe('plan', () => {
  const cases: Array<{
    name: string;
    item: SyncItem;
    snapshot: Snapshot | null;
    expect: Partial<Plan>;
  }> = [
    {
      name: 'a device ChirpStack does not have yet is created',
      item,
      snapshot: device,
      expect: { call: 'createDevice' },
    },
    {
      name: 'a device ChirpStack has is updated',
      item: { ...item, inChirpstack: true },
      snapshot: device,
      expect: { call: 'updateDevice' },
    },
    {
      name: 'a device without a ChirpStack application cannot be sent',
      item,
      snapshot: { ...device, applicationId: null },
      expect: { call: 'none', code: 'NOT_MAPPED' },
    },
    {
      name: 'a device whose application has no device profile cannot be sent',
      item,
      snapshot: { ...device, deviceProfileId: null },
      expect: { call: 'none', code: 'NOT_MAPPED' },
    },
    {
      name: 'a device deleted in the platform is deleted from ChirpStack, by its lower-case DevEUI',
      item: { ...item, inChirpstack: true },
      snapshot: null,
      expect: { call: 'deleteDevice', devEui: '70b3d57ed0000001' },
    },
    {
      name: 'a deleted device the row says ChirpStack never had is deleted too (a lost create answer)',
      item,
      snapshot: null,
      expect: { call: 'deleteDevice', devEui: '70b3d57ed0000001' },
    },
    {
      name: 'a gateway deleted in the platform is deleted from ChirpStack',
      item: { ...item, kind: 'gateway', eui: 'AA00000000000001', inChirpstack: true },
      snapshot: null,
      expect: { call: 'deleteGateway', gatewayId: 'aa00000000000001' },
    },
    {
      name: 'a deleted device another tenant has registered since is not deleted from ChirpStack',
      item: { ...item, inChirpstack: true },
      snapshot: { kind: 'registered-elsewhere' },
      expect: { call: 'skip' },
    },
  ];
  for (const c of cases) it(c.name, () => expect(plan(c.item, c.snapshot)).toMatchObject(c.expect));

  it('sends ChirpStack lower-case EUIs, the DevEUI as name when unnamed, and the platform tenant as a tag', () => {
    const p = plan(item, { ...device, disabled: true });
    expect(p).toMatchObject({
      device: {
        devEui: '70b3d57ed0000001',
        name: '70B3D57ED0000001',
        isDisabled: true,
        tags: { parking_tenant_id: item.tenantId, parking_category: 'sensor' },
      },
    });
  });

  it('maps a gateway to its ChirpStack tenant, with its location when both coordinates are known', () => {
    const p = plan(
      { ...item, kind: 'gateway' },
      {
        kind: 'gateway',
        gwEui: 'AA00000000000001',
        name: 'Roof',
        chirpstackTenantId: 'cs-tenant',
        latitude: 1,
        longitude: null,
      },
    );
    expect(p).toMatchObject({ call: 'createGateway', gateway: { tenantId: 'cs-tenant', location: null } });
  });
});

describe('outcome', () => {
  const create = plan(item, device);
  const update = plan({ ...item, inChirpstack: true }, device);
  const remove = plan({ ...item, inChirpstack: true }, null);
  const fail = (code: string): CallResult => ({ ok: false, code, message: `${code} happened` });
  const cases: Array<{
    name: string;
    item: SyncItem;
    plan: Plan;
    result: CallResult;
    expect: Partial<Outcome>;
  }> = [
    {
      name: 'skipped (registered in another tenant): synced, not ours in ChirpStack, no attempt counted',
      item: { ...item, attempts: 2, inChirpstack: true },
      plan: { call: 'skip' },
      result: { ok: true },
      expect: { status: 'synced', syncedVersion: 4, attempts: 0, inChirpstack: false, lastErrorCode: null },
    },
    {
      name: 'success: synced at the version sent, errors cleared',
      item: { ...item, attempts: 2 },
      plan: create,
      result: { ok: true },
      expect: { status: 'synced', syncedVersion: 4, attempts: 0, inChirpstack: true, lastError: null },
    },
    {
      name: 'a retriable failure backs off exponentially and keeps the error',
      item: { ...item, attempts: 1 },
      plan: create,
      result: fail('UNAVAILABLE'),
      expect: { status: 'retrying', attempts: 2, retryInMs: 2_000, lastErrorCode: 'UNAVAILABLE' },
    },
    {
      name: 'the last allowed attempt failing gives up',
      item: { ...item, attempts: 2 },
      plan: create,
      result: fail('UNAVAILABLE'),
      expect: { status: 'failed', attempts: 3, retryInMs: null },
    },
    {
      name: 'a non-retriable failure gives up at once',
      item,
      plan: create,
      result: fail('INVALID_ARGUMENT'),
      expect: { status: 'failed', attempts: 1, lastErrorCode: 'INVALID_ARGUMENT' },
    },
    {
      name: 'create answered ALREADY_EXISTS: updated next, at once',
      item,
      plan: create,
      result: fail('ALREADY_EXISTS'),
      expect: { status: 'pending', inChirpstack: true, retryInMs: 0 },
    },
    {
      name: 'update answered NOT_FOUND: created next, at once',
      item: { ...item, inChirpstack: true },
      plan: update,
      result: fail('NOT_FOUND'),
      expect: { status: 'pending', inChirpstack: false, retryInMs: 0 },
    },
    {
      name: 'a delete that succeeded: synced at the version sent, ChirpStack no longer has it',
      item: { ...item, inChirpstack: true, attempts: 1 },
      plan: remove,
      result: { ok: true },
      expect: {
        status: 'synced',
        syncedVersion: 4,
        attempts: 0,
        inChirpstack: false,
        retryInMs: null,
        lastErrorCode: null,
      },
    },
    {
      name: 'a delete answered NOT_FOUND is done: ChirpStack does not have it either',
      item: { ...item, inChirpstack: true },
      plan: remove,
      result: fail('NOT_FOUND'),
      expect: { status: 'synced', syncedVersion: 4, inChirpstack: false, lastErrorCode: null },
    },
    {
      name: 'a delete failing retriably backs off like any call, still in ChirpStack',
      item: { ...item, inChirpstack: true, attempts: 1 },
      plan: remove,
      result: fail('UNAVAILABLE'),
      expect: { status: 'retrying', attempts: 2, retryInMs: 2_000, inChirpstack: true, syncedVersion: null },
    },
    {
      name: 'a delete refused for good fails with the code',
      item: { ...item, inChirpstack: true },
      plan: remove,
      result: fail('INVALID_ARGUMENT'),
      expect: { status: 'failed', attempts: 1, lastErrorCode: 'INVALID_ARGUMENT', inChirpstack: true },
    },
    {
      name: 'an entity that cannot be mapped fails without a call',
      item,
      plan: { call: 'none', code: 'NOT_MAPPED', message: 'no profile' },
      result: { ok: true },
      expect: { status: 'failed', lastErrorCode: 'NOT_MAPPED', syncedVersion: null },
    },
  ];
  for (const c of cases)
    it(c.name, () => expect(outcome(c.item, c.plan, c.result, options, 0)).toMatchObject(c.expect));

  it('caps the backoff and adds at most 25 % jitter', () => {
    expect(backoffMs(10, options, 0)).toBe(5_000);
    expect(backoffMs(10, options, 0.999)).toBeLessThanOrEqual(6_250);
    expect(backoffMs(1, options, 0)).toBe(1_000);
  });
});
