import { describe, expect, it } from 'vitest';
import {
  initialRollupState,
  reduceRollups,
  type RollupEffect,
  type RollupEvent,
  type RollupState,
} from './reduce.js';
import { mulberry32 } from '../shared/testing/random.js';

const MIN = 60_000;
const change = (eventId: string, spaceId: string, atMin: number, to: 'free' | 'occupied'): RollupEvent => ({
  type: 'occupancy-changed',
  eventId,
  spaceId,
  to,
  at: atMin * MIN,
});
const tick = (atMin: number): RollupEvent => ({ type: 'tick', now: atMin * MIN });
const uplink = (
  eventId: string,
  at: number,
  batteryVolts: number | null,
  rssi: number | null,
  snr: number | null,
) => ({ type: 'uplink', eventId, devEui: 'D1', at, batteryVolts, rssi, snr }) as const;

function run(before: RollupState, input: RollupEvent[]) {
  let state = before;
  const effects: RollupEffect[] = [];
  for (const event of input) {
    const result = reduceRollups(state, event);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects };
}
/** "space s1 5m @10" style labels for compact assertions. */
function rows(effects: RollupEffect[]) {
  return Object.fromEntries(
    effects.flatMap((e) =>
      e.type === 'upsert-space-occupancy'
        ? [[`${e.spaceId} ${e.size} @${e.bucketStart / MIN}`, e.row]]
        : e.type === 'upsert-site-occupancy'
          ? [[`site ${e.size} @${e.bucketStart / MIN}`, e.row]]
          : [],
    ),
  );
}

const empty = initialRollupState('t1', 'site1');
// s1: occupied 3–7 min, free 7–9, occupied 9–16, free from 16.
const s1Day = [
  change('a', 's1', 3, 'occupied'),
  change('b', 's1', 7, 'free'),
  change('c', 's1', 9, 'occupied'),
  change('d', 's1', 16, 'free'),
];
const s1At20 = run(empty, [...s1Day, tick(20)]);

describe('reduceRollups: occupancy (hand-computed)', () => {
  it.each([
    {
      name: '5-minute buckets across boundaries: rate, dwell of periods ending, turnover of periods starting',
      input: () => s1At20,
      prefix: 's1 5m',
      expected: {
        's1 5m @0': {
          occupiedMs: 2 * MIN,
          observedMs: 2 * MIN,
          occupancyRate: 1,
          dwellMeanMs: null,
          dwellMedianMs: null,
          periodsEnded: 0,
          turnover: 1,
        },
        's1 5m @5': {
          occupiedMs: 3 * MIN,
          observedMs: 5 * MIN,
          occupancyRate: 0.6,
          dwellMeanMs: 4 * MIN,
          dwellMedianMs: 4 * MIN,
          periodsEnded: 1,
          turnover: 1,
        },
        's1 5m @10': {
          occupiedMs: 5 * MIN,
          observedMs: 5 * MIN,
          occupancyRate: 1,
          dwellMeanMs: null,
          dwellMedianMs: null,
          periodsEnded: 0,
          turnover: 0,
        },
        's1 5m @15': {
          occupiedMs: 1 * MIN,
          observedMs: 5 * MIN,
          occupancyRate: 0.2,
          dwellMeanMs: 7 * MIN,
          dwellMedianMs: 7 * MIN,
          periodsEnded: 1,
          turnover: 0,
        },
      },
    },
    {
      name: 'the hourly bucket closes at the hour: 11 of 57 observed minutes occupied, dwell 4 and 7 min',
      input: () => run(s1At20.state, [tick(60)]),
      prefix: 's1 1h',
      expected: {
        's1 1h @0': {
          occupiedMs: 11 * MIN,
          observedMs: 57 * MIN,
          occupancyRate: 11 / 57,
          dwellMeanMs: 5.5 * MIN,
          dwellMedianMs: 5.5 * MIN,
          periodsEnded: 2,
          turnover: 2,
        },
      },
    },
    {
      name: 'a late free at 12 min corrects only the buckets it changes (10 and 15, not 0 and 5)',
      input: () => run(s1At20.state, [change('late', 's1', 12, 'free')]),
      prefix: 's1 ',
      expected: {
        's1 5m @10': {
          occupiedMs: 2 * MIN,
          observedMs: 5 * MIN,
          occupancyRate: 0.4,
          dwellMeanMs: 3 * MIN,
          dwellMedianMs: 3 * MIN,
          periodsEnded: 1,
          turnover: 0,
        },
        's1 5m @15': {
          occupiedMs: 0,
          observedMs: 5 * MIN,
          occupancyRate: 0,
          dwellMeanMs: null,
          dwellMedianMs: null,
          periodsEnded: 0,
          turnover: 0,
        },
      },
    },
  ])('$name', ({ input, prefix, expected }) => {
    const found = rows(input().effects);
    const spaceRows = Object.fromEntries(Object.entries(found).filter(([k]) => k.startsWith(prefix)));
    expect(spaceRows).toEqual(expected);
  });

  it('the late correction also reaches the hourly bucket once it is closed', () => {
    const closed = run(s1At20.state, [tick(60)]).state;
    const found = rows(run(closed, [change('late', 's1', 12, 'free')]).effects);
    expect(found['s1 1h @0']).toEqual({
      occupiedMs: 7 * MIN,
      observedMs: 57 * MIN,
      occupancyRate: 7 / 57,
      dwellMeanMs: 3.5 * MIN,
      dwellMedianMs: 3.5 * MIN,
      periodsEnded: 2,
      turnover: 2,
    });
  });

  it('a site row sums its spaces: 7.5 of 10 space-minutes occupied, dwell from the space that left', () => {
    const { effects } = run(empty, [
      change('a', 'A', 0, 'occupied'),
      change('b', 'B', 0, 'occupied'),
      change('c', 'B', 2.5, 'free'),
      tick(5),
    ]);
    expect(rows(effects)['site 5m @0']).toEqual({
      occupiedMs: 7.5 * MIN,
      observedMs: 10 * MIN,
      occupancyRate: 0.75,
      dwellMeanMs: 2.5 * MIN,
      dwellMedianMs: 2.5 * MIN,
      periodsEnded: 1,
      turnover: 2,
    });
  });

  it('an even number of periods has the mean of the middle two as its median', () => {
    const { effects } = run(empty, [
      change('1', 's', 0, 'occupied'),
      change('2', 's', 1, 'free'),
      change('3', 's', 2, 'occupied'),
      change('4', 's', 2.5, 'free'),
      change('5', 's', 3, 'occupied'),
      change('6', 's', 4, 'free'),
      change('7', 's', 4.1, 'occupied'),
      change('8', 's', 4.2, 'free'),
      tick(5),
    ]);
    const row = rows(effects)['s 5m @0'];
    // Durations 1, 0.5, 1, 0.1 min: sorted 0.1, 0.5, 1, 1.
    expect(row?.dwellMedianMs).toBe(0.75 * MIN);
    expect(row?.dwellMeanMs).toBeCloseTo((2.6 / 4) * MIN, 6);
    expect(row?.turnover).toBe(4);
  });

  it('a bucket is emitted only when the watermark reaches its end', () => {
    const before = run(empty, [change('a', 's1', 0, 'occupied'), tick(5 - 1 / MIN)]);
    expect(rows(before.effects)).toEqual({});
    expect(Object.keys(rows(run(before.state, [tick(5)]).effects))).toEqual(['s1 5m @0', 'site 5m @0']);
  });

  it('a redelivered change and a tick without news emit nothing', () => {
    expect(run(s1At20.state, [change('c', 's1', 9, 'occupied'), tick(20)]).effects).toEqual([]);
  });

  it('a change older than the late horizon is dropped and reported', () => {
    const { effects } = run(s1At20.state, [tick(25 * 60), change('old', 's1', 30, 'free')]);
    expect(effects.at(-1)).toEqual({ type: 'late-dropped', tenantId: 't1', eventId: 'old', at: 30 * MIN });
  });
});

describe('reduceRollups: device health', () => {
  it('battery last and min, RSSI/SNR min and mean, last seen; a late uplink corrects its bucket; duplicates count once', () => {
    const { effects } = run(empty, [
      uplink('u1', 1 * MIN, 3.6, -90, 7),
      uplink('u2', 2 * MIN, 3.5, -100, 5),
      uplink('u0', 0.5 * MIN, 3.7, null, null),
      uplink('u0', 0.5 * MIN, 3.7, null, null),
    ]);
    const health = effects.filter((e) => e.type === 'upsert-device-health' && e.size === '5m');
    expect(health).toHaveLength(3);
    expect(health.at(-1)).toMatchObject({
      bucketStart: 0,
      row: {
        uplinks: 3,
        lastSeen: 2 * MIN,
        batteryVolts: 3.5,
        batteryMinVolts: 3.5,
        rssiMin: -100,
        rssiAvg: -95,
        snrMin: 5,
        snrAvg: 6,
      },
    });
  });
});

describe('reduceRollups: late events', () => {
  it('any arrival order ends with the same rows as in-order arrival (last upsert per bucket wins)', () => {
    const random = mulberry32(7);
    const finalRows = (events: RollupEvent[]) => {
      const table = new Map<string, unknown>();
      for (const e of run(empty, events).effects)
        if (e.type === 'upsert-space-occupancy' || e.type === 'upsert-site-occupancy')
          table.set(`${e.type}/${'spaceId' in e ? e.spaceId : e.siteId}/${e.size}/${e.bucketStart}`, e.row);
      return table;
    };
    for (let trial = 0; trial < 50; trial++) {
      const changes: Array<Extract<RollupEvent, { type: 'occupancy-changed' }>> = [];
      for (const spaceId of ['A', 'B', 'C']) {
        let at = 0;
        let occupied = random() < 0.5;
        for (let i = 0; i < 12; i++) {
          at += Math.floor(random() * 20 * MIN) + 1;
          changes.push({
            type: 'occupancy-changed',
            eventId: `${spaceId}${i}`,
            spaceId,
            to: occupied ? 'occupied' : 'free',
            at,
          });
          occupied = !occupied;
        }
      }
      const inOrder = [...changes].sort((a, b) => a.at - b.at);
      const shuffled = [...changes].sort(() => random() - 0.5);
      const end = tick(6 * 60);
      expect(finalRows([...shuffled, end])).toEqual(finalRows([...inOrder, end]));
    }
  });
});
