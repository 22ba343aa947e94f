import { describe, expect, it } from 'vitest';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import { initialSpaceState, reduceOccupancy, type SpaceState } from './reduce.js';

const base: UplinkRecord = {
  eventId: 'e1',
  tenantId: 't1',
  devEui: '70B3D57ED0051A2B',
  spaceId: 's1',
  time: 1_000,
  receivedAt: 1_010,
  source: 'MQTT',
  applicationId: 'a',
  fCnt: 5,
  fPort: 102,
  codec: 'browan-tbms100',
  occupied: true,
  batteryVolts: 3.6,
  temperatureC: 20,
  rssi: -90,
  snr: 7,
  gatewayIds: ['g1'],
  payload: Buffer.from([1]),
};

const occupiedAt1000: SpaceState = {
  state: 'occupied',
  stateSince: 1_000,
  lastEventTime: 1_000,
  lastFCnt: 5,
};

describe('reduceOccupancy', () => {
  it.each([
    {
      name: 'first reading sets the state and its start time',
      before: initialSpaceState,
      input: base,
      after: occupiedAt1000,
      changed: true as boolean | undefined,
    },
    {
      name: 'same state again keeps the original start time',
      before: occupiedAt1000,
      input: { ...base, time: 2_000, fCnt: 6 },
      after: { state: 'occupied', stateSince: 1_000, lastEventTime: 2_000, lastFCnt: 6 },
      changed: false,
    },
    {
      name: 'a change of state moves the start time',
      before: occupiedAt1000,
      input: { ...base, time: 3_000, fCnt: 7, occupied: false },
      after: { state: 'free', stateSince: 3_000, lastEventTime: 3_000, lastFCnt: 7 },
      changed: true,
    },
    {
      name: 'an older frame is ignored',
      before: occupiedAt1000,
      input: { ...base, time: 500, fCnt: 4, occupied: false },
      after: occupiedAt1000,
      changed: undefined,
    },
    {
      name: 'a redelivered frame (same time and fCnt) is ignored',
      before: occupiedAt1000,
      input: { ...base, occupied: false },
      after: occupiedAt1000,
      changed: undefined,
    },
    {
      name: 'a frame without occupancy only records the uplink',
      before: occupiedAt1000,
      input: { ...base, time: 4_000, fCnt: 8, occupied: null },
      after: occupiedAt1000,
      changed: undefined,
    },
    {
      name: 'a sensor without a space only records the uplink',
      before: initialSpaceState,
      input: { ...base, spaceId: null },
      after: initialSpaceState,
      changed: undefined,
    },
  ])('$name', ({ before, input, after, changed }) => {
    const result = reduceOccupancy(before, input);
    expect(result.state).toEqual(after);
    expect(result.effects[0]).toEqual({ type: 'record-uplink', uplink: input });
    const setState = result.effects.find((e) => e.type === 'set-space-state');
    expect(setState && 'changed' in setState ? setState.changed : undefined).toBe(changed);
    if (setState) expect(setState).toMatchObject({ tenantId: 't1', spaceId: 's1', state: after });
  });
});
