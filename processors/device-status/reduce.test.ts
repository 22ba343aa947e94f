import { describe, expect, it } from 'vitest';
import type { DeviceStatusRecord } from '../../schemas/avro/records.js';
import { reduceDeviceStatus, type DeviceStatusResult } from './reduce.js';

const T = Date.UTC(2026, 0, 5, 10, 0, 0);
const base: DeviceStatusRecord = {
  eventId: '6f1b3c9e-1d2a-4b7c-9e0f-0a1b2c3d4e5f',
  tenantId: '0b6f8a52-3c1d-4e2f-8a9b-1c2d3e4f5a6b',
  devEui: '70B3D57ED0000001',
  time: T,
  receivedAt: T + 40,
  source: 'MQTT',
  applicationId: 'app-1',
  margin: 7,
  externalPowerSource: false,
  batteryLevel: 87.5,
};
const row = (
  over: Partial<Extract<DeviceStatusResult, { kind: 'row' }>['row']> = {},
): DeviceStatusResult => ({
  kind: 'row',
  row: {
    tenantId: base.tenantId,
    devEui: base.devEui,
    time: T,
    batteryPercent: 87.5,
    margin: 7,
    externalPower: false,
    lastSeenAt: T,
    ...over,
  },
});

describe('reduceDeviceStatus', () => {
  it.each<{ name: string; input: Partial<DeviceStatusRecord>; expected: DeviceStatusResult }>([
    { name: 'battery-powered device with a known level: its level', input: {}, expected: row() },
    {
      name: 'level unknown (ChirpStack batteryLevelUnavailable): null battery',
      input: { batteryLevel: null },
      expected: row({ batteryPercent: null }),
    },
    {
      name: 'externally powered: no battery level even if one is sent, external power recorded',
      input: { externalPowerSource: true, batteryLevel: 0 },
      expected: row({ batteryPercent: null, externalPower: true }),
    },
    {
      name: 'externally powered without a level',
      input: { externalPowerSource: true, batteryLevel: null },
      expected: row({ batteryPercent: null, externalPower: true }),
    },
    {
      name: 'empty battery is 0, not unknown',
      input: { batteryLevel: 0 },
      expected: row({ batteryPercent: 0 }),
    },
    { name: 'full battery', input: { batteryLevel: 100 }, expected: row({ batteryPercent: 100 }) },
    {
      name: 'negative margin (below the demodulation floor) is kept',
      input: { margin: -5 },
      expected: row({ margin: -5 }),
    },
    {
      name: 'time and last seen are the network time, not the bridge receive time',
      input: { time: T - 3_000, receivedAt: T + 60_000 },
      expected: row({ time: T - 3_000, lastSeenAt: T - 3_000 }),
    },
    {
      name: 'level above 100: invalid',
      input: { batteryLevel: 100.5 },
      expected: { kind: 'invalid', reason: 'batteryLevel 100.5 is not a percentage (0-100)' },
    },
    {
      name: 'negative level: invalid',
      input: { batteryLevel: -1 },
      expected: { kind: 'invalid', reason: 'batteryLevel -1 is not a percentage (0-100)' },
    },
    {
      name: 'NaN level: invalid, even on external power',
      input: { batteryLevel: Number.NaN, externalPowerSource: true },
      expected: { kind: 'invalid', reason: 'batteryLevel NaN is not a percentage (0-100)' },
    },
    {
      name: 'fractional margin: invalid',
      input: { margin: 2.5 },
      expected: { kind: 'invalid', reason: 'margin 2.5 is not an integer (dB)' },
    },
  ])('$name', ({ input, expected }) => {
    expect(reduceDeviceStatus({ ...base, ...input })).toEqual(expected);
  });
});
