import { describe, expect, it } from 'vitest';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import { mulberry32 } from '../shared/testing/random.js';
import {
  defaultOccupancyPolicy,
  initialSpaceState,
  reduceOccupancy,
  type OccupancyEffect,
  type OccupancyEvent,
  type OccupancyPolicy,
  type SpaceState,
} from './reduce.js';

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

/** A reading at `time` ms with frame counter `fCnt`. */
function reading(time: number, fCnt: number, occupied: boolean | null, over: Partial<UplinkRecord> = {}) {
  return {
    type: 'uplink',
    uplink: { ...base, eventId: `e-${time}-${fCnt}`, time, fCnt, occupied, ...over },
  } as const;
}
const tick = (now: number): OccupancyEvent => ({ type: 'tick', tenantId: 't1', spaceId: 's1', now });

function run(before: SpaceState, input: OccupancyEvent[], policy: OccupancyPolicy = defaultOccupancyPolicy) {
  let state = before;
  const effects: OccupancyEffect[] = [];
  for (const event of input) {
    const result = reduceOccupancy(state, event, policy);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects };
}
const changes = (effects: OccupancyEffect[]) =>
  effects.flatMap((e) => (e.type === 'occupancy-changed' ? [{ from: e.from, to: e.to, at: e.at }] : []));
const drops = (effects: OccupancyEffect[]) =>
  effects.flatMap((e) => (e.type === 'frame-dropped' ? [e.reason] : []));

const freeSince0: SpaceState = {
  ...run(initialSpaceState, [reading(0, 1, false), reading(1, 2, false)]).state,
};
const countThree: OccupancyPolicy = { ...defaultOccupancyPolicy, confirmCount: 3 };
const immediate: OccupancyPolicy = { ...defaultOccupancyPolicy, confirmCount: 1 };
const stale = defaultOccupancyPolicy.staleAfterMs;

type Case = {
  name: string;
  before: SpaceState;
  input: OccupancyEvent[];
  policy?: OccupancyPolicy;
  assert: (result: { state: SpaceState; effects: OccupancyEffect[] }) => void;
};

const cases: Case[] = [
  {
    name: 'a single reading does not confirm a change',
    before: initialSpaceState,
    input: [reading(1_000, 5, true)],
    assert: ({ state, effects }) => {
      expect(state.state).toBe('unknown');
      expect(state.pending).toEqual({ occupied: true, times: [1_000] });
      expect(changes(effects)).toEqual([]);
    },
  },
  {
    name: 'two matching readings within the window confirm; the change dates from the first',
    before: freeSince0,
    input: [reading(20_000, 3, true), reading(25_000, 4, true)],
    assert: ({ state, effects }) => {
      expect(state).toMatchObject({ state: 'occupied', stateSince: 20_000, pending: null });
      expect(changes(effects)).toEqual([{ from: 'free', to: 'occupied', at: 20_000 }]);
      expect(effects.find((e) => e.type === 'occupancy-changed')).toMatchObject({
        tenantId: 't1',
        spaceId: 's1',
        devEui: base.devEui,
        confirmedAt: 25_000,
      });
    },
  },
  {
    name: 'readings exactly the window apart still confirm (inclusive)',
    before: freeSince0,
    input: [reading(20_000, 3, true), reading(30_000, 4, true)],
    assert: ({ effects }) => expect(changes(effects)).toEqual([{ from: 'free', to: 'occupied', at: 20_000 }]),
  },
  {
    name: 'readings 1 ms more than the window apart do not confirm; the later one starts a new run',
    before: freeSince0,
    input: [reading(20_000, 3, true), reading(30_001, 4, true)],
    assert: ({ state, effects }) => {
      expect(changes(effects)).toEqual([]);
      expect(state.pending).toEqual({ occupied: true, times: [30_001] });
    },
  },
  {
    name: 'noisy alternation never confirms',
    before: freeSince0,
    input: [
      reading(20_000, 3, true),
      reading(21_000, 4, false),
      reading(22_000, 5, true),
      reading(23_000, 6, false),
      reading(24_000, 7, true),
    ],
    assert: ({ state, effects }) => {
      expect(state.state).toBe('free');
      expect(changes(effects)).toEqual([]);
    },
  },
  {
    name: 'a reading equal to the stable state cancels the pending change',
    before: freeSince0,
    input: [reading(20_000, 3, true), reading(21_000, 4, false)],
    assert: ({ state }) => expect(state.pending).toBeNull(),
  },
  {
    name: 'the window slides: with three readings needed, the last three within 10 s confirm',
    before: freeSince0,
    policy: countThree,
    input: [
      reading(20_000, 3, true),
      reading(28_000, 4, true),
      reading(32_000, 5, true),
      reading(36_000, 6, true),
    ],
    assert: ({ effects }) => expect(changes(effects)).toEqual([{ from: 'free', to: 'occupied', at: 28_000 }]),
  },
  {
    name: 'a heartbeat without occupancy neither confirms nor cancels a pending change',
    before: freeSince0,
    input: [reading(20_000, 3, true), reading(21_000, 4, null), reading(22_000, 5, true)],
    assert: ({ state, effects }) => {
      expect(changes(effects)).toEqual([{ from: 'free', to: 'occupied', at: 20_000 }]);
      expect(state.lastEventTime).toBe(22_000);
    },
  },
  {
    name: 'with a count of one policy, the first reading confirms',
    before: initialSpaceState,
    policy: immediate,
    input: [reading(1_000, 5, true)],
    assert: ({ state, effects }) => {
      expect(state).toMatchObject({ state: 'occupied', stateSince: 1_000 });
      expect(changes(effects)).toEqual([{ from: 'unknown', to: 'occupied', at: 1_000 }]);
    },
  },
  {
    name: 'an older frame is dropped as out-of-order and changes nothing',
    before: freeSince0,
    input: [reading(0, 9, true)],
    assert: ({ state, effects }) => {
      expect(state).toEqual(freeSince0);
      expect(drops(effects)).toEqual(['out-of-order']);
      expect(effects[0]).toMatchObject({ type: 'record-uplink' });
    },
  },
  {
    name: 'a redelivered frame (same time and fCnt) is dropped as a duplicate',
    before: freeSince0,
    input: [reading(1, 2, true)],
    assert: ({ state, effects }) => {
      expect(state).toEqual(freeSince0);
      expect(drops(effects)).toEqual(['duplicate']);
    },
  },
  {
    name: 'the same fCnt from the same device 30 s later is the same frame seen again',
    before: freeSince0,
    input: [reading(30_001, 2, true)],
    assert: ({ effects }) => expect(drops(effects)).toEqual(['duplicate']),
  },
  {
    name: 'a lower fCnt with a later time is a counter reset (rejoin) and becomes the baseline',
    before: freeSince0,
    input: [reading(100_000, 0, true), reading(101_000, 1, true)],
    assert: ({ state, effects }) => {
      expect(drops(effects)).toEqual([]);
      expect(effects.filter((e) => e.type === 'record-uplink').map((e) => e.fCntReset)).toEqual([
        true,
        false,
      ]);
      expect(state).toMatchObject({ state: 'occupied', lastFCnt: 1, lastEventTime: 101_000 });
    },
  },
  {
    name: 'a frame from another device (sensor swapped) is ordered by time only',
    before: freeSince0,
    input: [reading(100_000, 2, null, { devEui: '70B3D57ED0051A2C' })],
    assert: ({ state, effects }) => {
      expect(drops(effects)).toEqual([]);
      expect(state.lastDevEui).toBe('70B3D57ED0051A2C');
    },
  },
  {
    name: 'a tick at the stale time flags the space and keeps the stable state, once',
    before: freeSince0,
    input: [tick(1 + stale - 1), tick(1 + stale), tick(1 + stale + 60_000)],
    assert: ({ state, effects }) => {
      expect(state).toMatchObject({ state: 'free', stale: true });
      const flags = effects.filter((e) => e.type === 'stale-changed');
      expect(flags).toHaveLength(1);
      expect(flags[0]).toMatchObject({ stale: true, at: 1 + stale, devEui: base.devEui });
    },
  },
  {
    name: 'any frame after the stale flag clears it',
    before: { ...freeSince0, stale: true },
    input: [reading(1 + stale + 5, 3, null)],
    assert: ({ state, effects }) => {
      expect(state.stale).toBe(false);
      expect(effects.filter((e) => e.type === 'stale-changed')).toMatchObject([
        { stale: false, at: 1 + stale + 5 },
      ]);
    },
  },
  {
    name: 'a sensor without a space only records the uplink',
    before: initialSpaceState,
    input: [reading(1_000, 5, true, { spaceId: null })],
    assert: ({ state, effects }) => {
      expect(state).toEqual(initialSpaceState);
      expect(effects.map((e) => e.type)).toEqual(['record-uplink']);
    },
  },
];

describe('reduceOccupancy', () => {
  it.each(cases)('$name', ({ before, input, policy, assert }) => assert(run(before, input, policy)));

  it('effect ids depend only on the inputs: the same batch replayed gives the same ids', () => {
    const input = [reading(20_000, 3, true), reading(25_000, 4, true), tick(25_000 + stale)];
    const ids = (effects: OccupancyEffect[]) => effects.flatMap((e) => ('eventId' in e ? [e.eventId] : []));
    const first = ids(run(freeSince0, input).effects);
    expect(ids(run(freeSince0, input).effects)).toEqual(first);
    expect(new Set(first.filter((id) => /^[0-9a-f-]{36}$/.test(id))).size).toBe(2);
  });
});

/**
 * Reference model, written from the rules rather than from the reducer: keep the frames that come strictly
 * later in (time, fCnt) order, drop same-fCnt repeats within the duplicate window, then scan the readings:
 * the state becomes v when the last `confirmCount` readings are all v, differ from the state, and span at most
 * the window.
 */
function referenceModel(events: OccupancyEvent[], policy: OccupancyPolicy) {
  const accepted: UplinkRecord[] = [];
  const staleFlags: boolean[] = [];
  for (const event of events) {
    if (event.type === 'tick') {
      const last = accepted[accepted.length - 1];
      if (last && event.now - last.time >= policy.staleAfterMs) staleFlags.push(true);
      continue;
    }
    const last = accepted[accepted.length - 1];
    const u = event.uplink;
    const keep =
      !last ||
      (u.time > last.time && !(u.fCnt === last.fCnt && u.time - last.time <= policy.duplicateWindowMs)) ||
      (u.time === last.time && u.fCnt > last.fCnt);
    if (keep) {
      accepted.push(u);
      staleFlags.length = 0;
    }
  }
  let state: 'unknown' | 'free' | 'occupied' = 'unknown';
  const changeList: Array<{ from: string; to: string; at: number }> = [];
  const readings = accepted.filter((u) => u.occupied !== null);
  readings.forEach((u, i) => {
    if (i + 1 < policy.confirmCount) return;
    const lastN = readings.slice(i + 1 - policy.confirmCount, i + 1);
    const value = u.occupied ? 'occupied' : 'free';
    const first = lastN[0]!;
    if (
      value !== state &&
      lastN.every((r) => r.occupied === u.occupied) &&
      u.time - first.time <= policy.confirmWindowMs
    ) {
      changeList.push({ from: state, to: value, at: first.time });
      state = value;
    }
  });
  return { state, changes: changeList, stale: staleFlags.length > 0, accepted: accepted.length };
}

describe('reduceOccupancy against the reference model', () => {
  const policies: OccupancyPolicy[] = [
    defaultOccupancyPolicy,
    countThree,
    immediate,
    { ...defaultOccupancyPolicy, staleAfterMs: 30_000 },
  ];
  it.each(policies.map((policy, i) => ({ policy, i })))(
    'random sequences (policy $i): stepwise reduction equals the model',
    ({ policy, i }) => {
      const random = mulberry32(1_000 + i);
      for (let trial = 0; trial < 300; trial++) {
        const events: OccupancyEvent[] = [];
        let time = 0;
        let fCnt = 0;
        const length = 1 + Math.floor(random() * 40);
        for (let n = 0; n < length; n++) {
          const roll = random();
          const previous = events[events.length - 1];
          if (roll < 0.1 && previous) events.push(previous);
          else if (roll < 0.2)
            events.push(reading(Math.max(0, time - Math.floor(random() * 20_000)), fCnt, true));
          else if (roll < 0.27) events.push(tick(time + Math.floor(random() * 60_000)));
          else {
            time += Math.floor(random() * 12_000);
            fCnt = random() < 0.05 ? 0 : fCnt + 1;
            const value = random();
            events.push(reading(time, fCnt, value < 0.1 ? null : value < 0.55));
          }
        }
        const actual = run(initialSpaceState, events, policy);
        const expected = referenceModel(events, policy);
        const context = JSON.stringify(
          events.map((e) => (e.type === 'tick' ? e : [e.uplink.time, e.uplink.fCnt, e.uplink.occupied])),
        );
        expect(actual.state.state, context).toBe(expected.state);
        expect(changes(actual.effects), context).toEqual(expected.changes);
        expect(actual.state.stale, context).toBe(expected.stale);
        expect(
          events.length - drops(actual.effects).length - events.filter((e) => e.type === 'tick').length,
        ).toBe(expected.accepted);
      }
    },
  );
});

describe('reduceOccupancy on redelivery', () => {
  it('re-applying an already applied sequence (a Kafka redelivery) changes nothing and emits no change', () => {
    const random = mulberry32(99);
    for (let trial = 0; trial < 100; trial++) {
      const events: OccupancyEvent[] = [];
      let time = 0;
      for (let n = 0; n < 20; n++) {
        time += 1 + Math.floor(random() * 8_000);
        events.push(reading(time, n, random() < 0.5));
      }
      const once = run(initialSpaceState, events);
      const again = run(once.state, events);
      expect(again.state).toEqual(once.state);
      expect(changes(again.effects)).toEqual([]);
    }
  });
});
