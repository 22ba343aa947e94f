import { describe, expect, it } from 'vitest';
import {
  defaultDisplayPolicy,
  initialDisplayState,
  reduceDisplay,
  type DisplayEffect,
  type DisplayEvent,
  type DisplayPolicy,
  type DisplayResult,
  type DisplayState,
} from './reduce.js';

const MIN = 60_000;
let n = 0;
const id = () => `ev-${++n}`;
const sensor = (at: number, state: 'free' | 'occupied', stale = false): DisplayEvent => ({
  type: 'sensor-changed',
  eventId: id(),
  at,
  state,
  stale,
});
const created = (at: number, reservationId: string, startsAt: number, endsAt: number): DisplayEvent => ({
  type: 'reservation-created',
  eventId: id(),
  at,
  reservationId,
  startsAt,
  endsAt,
});
const started = (at: number, reservationId: string): DisplayEvent => ({
  type: 'reservation-started',
  eventId: id(),
  at,
  reservationId,
});
const lifecycle = (at: number, outOfService: boolean, blocked: boolean): DisplayEvent => ({
  type: 'lifecycle-changed',
  eventId: id(),
  at,
  outOfService,
  blocked,
});
const tick = (now: number): DisplayEvent => ({ type: 'tick', now });
const confirm = (at: number, commandId: string, kind: 'ack' | 'txack', acknowledged: boolean | null = null) =>
  ({ type: 'downlink-confirmed', eventId: id(), at, commandId, kind, acknowledged }) as const;

function run(before: DisplayState, input: DisplayEvent[], policy: DisplayPolicy = defaultDisplayPolicy) {
  let state = before;
  const results: DisplayResult[] = [];
  const effects: DisplayEffect[] = [];
  for (const event of input) {
    const result = reduceDisplay(state, event, policy);
    results.push(result);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, results, effects, kinds: effects.map((e) => e.kind) };
}

const fresh = initialDisplayState('t1', 'D1', 's1');
/** Showing occupied from the sensor; its command confirmed. */
const showingOccupied = (() => {
  const first = run(fresh, [sensor(1_000, 'occupied')]);
  return run(first.state, [confirm(1_100, first.state.lastCommand!.commandId, 'txack')]).state;
})();

type Case = {
  name: string;
  before: DisplayState;
  input: (before: DisplayState) => DisplayEvent[];
  policy?: DisplayPolicy;
  assert: (r: ReturnType<typeof run>) => void;
};

const cases: Case[] = [
  {
    name: 'with nothing known the display shows free',
    before: fresh,
    input: () => [tick(1_000)],
    assert: ({ effects }) => expect(effects).toMatchObject([{ kind: 'free', reason: 'default', resend: 0 }]),
  },
  {
    name: 'the debounced sensor state is shown, and the same state again sends nothing',
    before: fresh,
    input: () => [sensor(1_000, 'occupied'), sensor(2_000, 'occupied')],
    assert: ({ kinds }) => expect(kinds).toEqual(['occupied']),
  },
  {
    name: 'a stale sensor keeps the last stable state without a new command',
    before: showingOccupied,
    input: () => [sensor(5_000, 'occupied', true)],
    assert: ({ effects, state }) => {
      expect(effects).toEqual([]);
      expect(state.sensor).toEqual({ state: 'occupied', stale: true });
    },
  },
  {
    name: 'out of service beats a started reservation and is shown as maintenance',
    before: showingOccupied,
    input: () => [created(2_000, 'r1', 3_000, 60 * MIN), started(3_000, 'r1'), lifecycle(4_000, true, false)],
    assert: ({ effects }) =>
      expect(effects.map((e) => [e.kind, e.reason])).toEqual([
        ['reserved-soon', 'reservation-soon'],
        ['reserved', 'reservation-active'],
        ['maintenance', 'out-of-service'],
      ]),
  },
  {
    name: 'a blocked space is shown as maintenance; unblocked it falls back to the sensor',
    before: showingOccupied,
    input: () => [lifecycle(2_000, false, true), lifecycle(3_000, false, false)],
    assert: ({ effects }) =>
      expect(effects.map((e) => [e.kind, e.reason])).toEqual([
        ['maintenance', 'blocked'],
        ['occupied', 'sensor'],
      ]),
  },
  {
    name: 'an active reservation beats the sensor state',
    before: fresh,
    input: () => [sensor(1_000, 'free'), created(1_000, 'r1', 2_000, 10 * MIN), started(2_000, 'r1')],
    assert: ({ kinds }) => expect(kinds).toEqual(['free', 'reserved-soon', 'reserved']),
  },
  {
    name: 'a reservation 16 minutes ahead is not shown; a tick at 15 minutes before shows reserved-soon',
    before: showingOccupied,
    input: () => [
      created(2_000, 'r1', 2_000 + 16 * MIN, 2_000 + 60 * MIN),
      tick(2_000 + MIN - 1),
      tick(2_000 + MIN),
    ],
    assert: ({ effects }) => expect(effects).toMatchObject([{ kind: 'reserved-soon', sentAt: 2_000 + MIN }]),
  },
  {
    name: 'a no-show reservation stops being shown once its start passed',
    before: showingOccupied,
    input: () => [created(2_000, 'r1', 5 * MIN, 60 * MIN), tick(5 * MIN)],
    assert: ({ kinds }) => expect(kinds).toEqual(['reserved-soon', 'occupied']),
  },
  {
    name: 'a started reservation ends at its end time without an ended event',
    before: showingOccupied,
    input: () => [created(2_000, 'r1', 3_000, 10 * MIN), started(3_000, 'r1'), tick(10 * MIN)],
    assert: ({ kinds, state }) => {
      expect(kinds).toEqual(['reserved-soon', 'reserved', 'occupied']);
      expect(state.reservations).toEqual([]);
    },
  },
  {
    name: 'a cancelled reservation is no longer shown',
    before: showingOccupied,
    input: () => [
      created(2_000, 'r1', 3 * MIN, 10 * MIN),
      { type: 'reservation-cancelled', eventId: id(), at: 3_000, reservationId: 'r1' },
    ],
    assert: ({ kinds }) => expect(kinds).toEqual(['reserved-soon', 'occupied']),
  },
  {
    name: 'an override beats a reservation until it expires',
    before: showingOccupied,
    input: () => [
      created(2_000, 'r1', 3_000, 60 * MIN),
      started(3_000, 'r1'),
      { type: 'override-set', eventId: id(), at: 4_000, kind: 'free', expiresAt: 10 * MIN },
      tick(10 * MIN - 1),
      tick(10 * MIN),
    ],
    assert: ({ effects, state }) => {
      // The unconfirmed override command is re-sent once (resend 1) before the override expires.
      expect(effects.map((e) => [e.kind, e.reason, e.resend])).toEqual([
        ['reserved-soon', 'reservation-soon', 0],
        ['reserved', 'reservation-active', 0],
        ['free', 'override', 0],
        ['free', 'override', 1],
        ['reserved', 'reservation-active', 0],
      ]);
      expect(state.override).toBeNull();
    },
  },
  {
    name: 'an override cannot take a space out of maintenance: rejected, state unchanged',
    before: showingOccupied,
    input: () => [
      lifecycle(2_000, false, true),
      { type: 'override-set', eventId: 'ov1', at: 3_000, kind: 'free', expiresAt: 10 * MIN },
    ],
    assert: ({ results, state }) => {
      expect(results[1]).toMatchObject({
        ok: false,
        rejection: { code: 'TRANSITION_NOT_ALLOWED', eventId: 'ov1', from: 'maintenance', to: 'free' },
      });
      expect(state.override).toBeNull();
    },
  },
  {
    name: 'a reservation cannot start on a space in maintenance',
    before: showingOccupied,
    input: () => [
      lifecycle(2_000, true, false),
      created(2_000, 'r1', 60 * MIN, 90 * MIN),
      started(60 * MIN, 'r1'),
    ],
    assert: ({ results, state }) => {
      expect(results.map((r) => r.ok)).toEqual([true, true, false]);
      expect(state.reservations[0]?.started).toBe(false);
    },
  },
  {
    name: 'starting an unknown reservation and booking an overlapping one are rejected',
    before: showingOccupied,
    input: () => [
      started(2_000, 'nope'),
      created(2_000, 'r1', 60 * MIN, 90 * MIN),
      created(2_000, 'r2', 80 * MIN, 100 * MIN),
      created(2_000, 'r3', 90 * MIN, 100 * MIN),
    ],
    assert: ({ results, state }) => {
      expect(results.map((r) => (r.ok ? 'ok' : r.rejection.code))).toEqual([
        'UNKNOWN_RESERVATION',
        'ok',
        'RESERVATION_OVERLAP',
        'ok',
      ]);
      expect(state.reservations.map((r) => r.reservationId)).toEqual(['r1', 'r3']);
    },
  },
  {
    name: 'an unconfirmed command is re-sent with the same id after the timeout, and not after a txack',
    before: fresh,
    input: () => [
      sensor(0, 'occupied'),
      tick(5 * MIN - 1),
      tick(5 * MIN),
      tick(10 * MIN - 1),
      tick(10 * MIN),
    ],
    assert: ({ effects }) => {
      expect(effects.map((e) => [e.resend, e.sentAt])).toEqual([
        [0, 0],
        [1, 5 * MIN],
        [2, 10 * MIN],
      ]);
      expect(new Set(effects.map((e) => e.commandId)).size).toBe(1);
    },
  },
  {
    name: 'a txack for the current command confirms it: reconciliation stays quiet',
    before: fresh,
    input: () => [sensor(0, 'occupied'), tick(1)],
    assert: ({ state }) => {
      const after = run(state, [confirm(2, state.lastCommand!.commandId, 'txack'), tick(60 * MIN)]);
      expect(after.effects).toEqual([]);
      expect(after.state.lastCommand?.confirmed).toBe(true);
    },
  },
  {
    name: 'a negative ack, an ack for another command, or a txack when an ack is required do not confirm',
    before: fresh,
    policy: { ...defaultDisplayPolicy, requireAck: true },
    input: () => [sensor(0, 'occupied')],
    assert: ({ state }) => {
      const policy = { ...defaultDisplayPolicy, requireAck: true };
      const commandId = state.lastCommand!.commandId;
      const after = run(
        state,
        [
          confirm(1, commandId, 'ack', false),
          confirm(2, 'other', 'ack', true),
          confirm(3, commandId, 'txack'),
        ],
        policy,
      );
      expect(after.state.lastCommand?.confirmed).toBe(false);
      expect(
        run(after.state, [confirm(4, commandId, 'ack', true)], policy).state.lastCommand?.confirmed,
      ).toBe(true);
    },
  },
  {
    name: 'the tenant policy decides colours and blink',
    before: fresh,
    policy: {
      ...defaultDisplayPolicy,
      looks: { ...defaultDisplayPolicy.looks, occupied: { colour: [128, 0, 128], blink: true } },
    },
    input: () => [sensor(0, 'occupied')],
    assert: ({ effects }) => expect(effects[0]?.look).toEqual({ colour: [128, 0, 128], blink: true }),
  },
  {
    name: 'a repeated older sensor fact (the outbox delivers at least once) is dropped: no command, no state',
    before: fresh,
    input: () => [
      sensor(1_000, 'occupied'),
      sensor(2_000, 'free'),
      sensor(1_000, 'occupied'),
      sensor(2_000, 'free'),
    ],
    assert: ({ state, kinds }) => {
      expect(kinds).toEqual(['occupied', 'free']);
      expect(state.sensor).toEqual({ state: 'free', stale: false });
      expect(state.sensorAt).toBe(2_000);
      expect(state.commandSeq).toBe(2);
    },
  },
  {
    name: 'command ids follow the per-display sequence, so a replay gives the same ids',
    before: fresh,
    input: () => [sensor(0, 'occupied'), sensor(1, 'free')],
    assert: ({ effects }) => {
      const replay = run(fresh, [sensor(0, 'occupied'), sensor(1, 'free')]).effects;
      expect(replay.map((e) => e.commandId)).toEqual(effects.map((e) => e.commandId));
      expect(effects[0]?.commandId).not.toBe(effects[1]?.commandId);
    },
  },
];

describe('reduceDisplay', () => {
  it.each(cases)('$name', ({ before, input, policy, assert }) => assert(run(before, input(before), policy)));
});
