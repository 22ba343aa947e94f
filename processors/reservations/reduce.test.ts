import { describe, expect, it } from 'vitest';
import { stableId } from '../shared/stable-id.js';
import {
  isDue,
  reduceReservation,
  type DeferredReason,
  type ReservationChange,
  type ReservationEventType,
  type ReservationFacts,
  type ReservationStatus,
} from './reduce.js';

const min = 60_000;
const t0 = Date.parse('2026-11-25T10:00:00Z');
const policy = { noShowGraceMs: 15 * min };

/**
 * A confirmed, announced reservation of a space with a sensor, from t0 to t0 + 1 h, created an hour before; with
 * the evidence a no-show needs: the sensor last heard at start + grace, the occupancy consumer caught up.
 */
function facts(over: Partial<ReservationFacts> = {}): ReservationFacts {
  return {
    tenantId: '0b6f4a8e-8f3a-4b7c-9d1e-2a3b4c5d6e7f',
    reservationId: 'c0ffee00-1234-4abc-8def-0123456789ab',
    spaceId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
    startsAt: t0,
    endsAt: t0 + 60 * min,
    status: 'confirmed',
    announcedStatus: 'confirmed',
    userId: null,
    createdAt: t0 - 60 * min,
    cancelledAt: null,
    updatedAt: t0 - 60 * min,
    attendanceCheckedAt: null,
    hasSensor: true,
    devEui: '70B3D57ED0051A2B',
    occupiedSince: null,
    sensorHeardAt: t0 + 15 * min,
    arrivalPending: false,
    pipelineCaughtUp: true,
    ...over,
  };
}

type Ev = [
  type: ReservationEventType,
  status: ReservationStatus,
  previous: ReservationStatus | null,
  time: number,
];

const cases: Array<{
  name: string;
  before: Partial<ReservationFacts>;
  now: number;
  change: ReservationChange | null;
  events: Ev[];
  /** The judgement was due and deferred for lack of evidence (default: not). */
  deferred?: DeferredReason;
}> = [
  {
    name: 'created through the API: the created event, nothing else changes',
    before: { announcedStatus: null },
    now: t0 - 30 * min,
    change: { status: 'confirmed', statusChangedAt: null, attendance: null, announcedStatus: 'confirmed' },
    events: [['created', 'confirmed', null, t0 - 60 * min]],
  },
  {
    name: 'confirmed, before its start: nothing to do',
    before: {},
    now: t0 - 1,
    change: null,
    events: [],
  },
  {
    name: 'started, within the grace, never occupied: nothing yet',
    before: {},
    now: t0 + 15 * min - 1,
    change: null,
    events: [],
  },
  {
    name: 'grace passed, sensor heard at start + grace, never occupied since the start: no-show',
    before: {},
    now: t0 + 15 * min,
    change: {
      status: 'no_show',
      statusChangedAt: t0 + 15 * min,
      attendance: null,
      announcedStatus: 'no_show',
    },
    events: [['no-show', 'no_show', 'confirmed', t0 + 15 * min]],
  },
  {
    name: 'grace passed, occupied since 5 minutes after the start: arrived, stays confirmed',
    before: { occupiedSince: t0 + 5 * min },
    now: t0 + 16 * min,
    change: {
      status: 'confirmed',
      statusChangedAt: null,
      attendance: { checkedAt: t0 + 16 * min, arrivedAt: t0 + 5 * min },
      announcedStatus: 'confirmed',
    },
    events: [],
  },
  {
    name: 'sensor silent since before the start: no judgement (attendance not recorded), retried next tick',
    before: { sensorHeardAt: t0 - 5 * min },
    now: t0 + 20 * min,
    change: null,
    events: [],
    deferred: 'sensor-silent',
  },
  {
    name: 'sensor heard after the start but before start + grace: not evidence enough, no judgement',
    before: { sensorHeardAt: t0 + 15 * min - 1 },
    now: t0 + 20 * min,
    change: null,
    events: [],
    deferred: 'sensor-silent',
  },
  {
    name: 'sensor never heard: no judgement',
    before: { sensorHeardAt: null },
    now: t0 + 20 * min,
    change: null,
    events: [],
    deferred: 'sensor-silent',
  },
  {
    name: 'sensor silent since before the start, end passed: expires, never a no-show',
    before: { sensorHeardAt: t0 - 5 * min },
    now: t0 + 60 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 60 * min,
      attendance: null,
      announcedStatus: 'expired',
    },
    events: [['expired', 'expired', 'confirmed', t0 + 60 * min]],
    deferred: 'sensor-silent',
  },
  {
    name: 'occupancy consumer behind (gate closed), sensor heard, never occupied: no judgement',
    before: { pipelineCaughtUp: false, sensorHeardAt: t0 + 19 * min },
    now: t0 + 20 * min,
    change: null,
    events: [],
    deferred: 'pipeline-behind',
  },
  {
    name: 'occupancy consumer behind until the end: expires, never a no-show',
    before: { pipelineCaughtUp: false },
    now: t0 + 60 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 60 * min,
      attendance: null,
      announcedStatus: 'expired',
    },
    events: [['expired', 'expired', 'confirmed', t0 + 60 * min]],
    deferred: 'pipeline-behind',
  },
  {
    name: 'occupancy consumer behind, but occupied since the start: arrival needs no gate, recorded',
    before: { pipelineCaughtUp: false, sensorHeardAt: null, occupiedSince: t0 + 2 * min },
    now: t0 + 20 * min,
    change: {
      status: 'confirmed',
      statusChangedAt: null,
      attendance: { checkedAt: t0 + 20 * min, arrivedAt: t0 + 2 * min },
      announcedStatus: 'confirmed',
    },
    events: [],
  },
  {
    name: 'sensor heard, an occupied reading pending in the debounce: no judgement',
    before: { sensorHeardAt: t0 + 16 * min, arrivalPending: true },
    now: t0 + 16 * min,
    change: null,
    events: [],
    deferred: 'arrival-pending',
  },
  {
    name: 'space without a sensor, consumer behind: recorded as checked (it only expires)',
    before: { hasSensor: false, devEui: null, sensorHeardAt: null, pipelineCaughtUp: false },
    now: t0 + 15 * min,
    change: {
      status: 'confirmed',
      statusChangedAt: null,
      attendance: { checkedAt: t0 + 15 * min, arrivedAt: null },
      announcedStatus: 'confirmed',
    },
    events: [],
  },
  {
    name: 'grace passed, occupied at the start already: arrived at the start',
    before: { occupiedSince: t0 },
    now: t0 + 20 * min,
    change: {
      status: 'confirmed',
      statusChangedAt: null,
      attendance: { checkedAt: t0 + 20 * min, arrivedAt: t0 },
      announcedStatus: 'confirmed',
    },
    events: [],
  },
  {
    name: 'grace passed, space without a sensor: cannot be judged, recorded as checked',
    before: { hasSensor: false, devEui: null },
    now: t0 + 15 * min,
    change: {
      status: 'confirmed',
      statusChangedAt: null,
      attendance: { checkedAt: t0 + 15 * min, arrivedAt: null },
      announcedStatus: 'confirmed',
    },
    events: [],
  },
  {
    name: 'attendance checked, end passed: expired',
    before: { attendanceCheckedAt: t0 + 15 * min },
    now: t0 + 60 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 60 * min,
      attendance: null,
      announcedStatus: 'expired',
    },
    events: [['expired', 'expired', 'confirmed', t0 + 60 * min]],
  },
  {
    name: 'job down the whole reservation, occupied during it: arrived and expired in one step',
    before: { occupiedSince: t0 + 30 * min },
    now: t0 + 90 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 90 * min,
      attendance: { checkedAt: t0 + 90 * min, arrivedAt: t0 + 30 * min },
      announcedStatus: 'expired',
    },
    events: [['expired', 'expired', 'confirmed', t0 + 90 * min]],
  },
  {
    name: 'job down the whole reservation, never occupied: no-show, not expired',
    before: {},
    now: t0 + 90 * min,
    change: {
      status: 'no_show',
      statusChangedAt: t0 + 90 * min,
      attendance: null,
      announcedStatus: 'no_show',
    },
    events: [['no-show', 'no_show', 'confirmed', t0 + 90 * min]],
  },
  {
    name: 'created and ended before the job first saw it: created, then expired',
    before: { announcedStatus: null, attendanceCheckedAt: t0 + 15 * min },
    now: t0 + 61 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 61 * min,
      attendance: null,
      announcedStatus: 'expired',
    },
    events: [
      ['created', 'confirmed', null, t0 - 60 * min],
      ['expired', 'expired', 'confirmed', t0 + 61 * min],
    ],
  },
  {
    name: 'cancelled through the API: the cancelled event at its cancel time, the status untouched',
    before: { status: 'cancelled', cancelledAt: t0 - 10 * min, updatedAt: t0 - 10 * min },
    now: t0 + 90 * min,
    change: { status: 'cancelled', statusChangedAt: null, attendance: null, announcedStatus: 'cancelled' },
    events: [['cancelled', 'cancelled', 'confirmed', t0 - 10 * min]],
  },
  {
    name: 'created and cancelled before the job saw it: created, then cancelled',
    before: { status: 'cancelled', announcedStatus: null, cancelledAt: t0 - 50 * min },
    now: t0 - 40 * min,
    change: { status: 'cancelled', statusChangedAt: null, attendance: null, announcedStatus: 'cancelled' },
    events: [
      ['created', 'confirmed', null, t0 - 60 * min],
      ['cancelled', 'cancelled', 'confirmed', t0 - 50 * min],
    ],
  },
  {
    name: 'cancelled and announced, long past its end, never occupied: untouched (final)',
    before: { status: 'cancelled', announcedStatus: 'cancelled', cancelledAt: t0 - 10 * min },
    now: t0 + 120 * min,
    change: null,
    events: [],
  },
  {
    name: 'no-show announced: untouched (final)',
    before: { status: 'no_show', announcedStatus: 'no_show' },
    now: t0 + 120 * min,
    change: null,
    events: [],
  },
  {
    name: 'pending, end passed: expired without a no-show judgement',
    before: { status: 'pending', announcedStatus: 'pending' },
    now: t0 + 60 * min,
    change: {
      status: 'expired',
      statusChangedAt: t0 + 60 * min,
      attendance: null,
      announcedStatus: 'expired',
    },
    events: [['expired', 'expired', 'pending', t0 + 60 * min]],
  },
  {
    name: 'pending then confirmed (by the API): the confirmed event',
    before: { announcedStatus: 'pending', updatedAt: t0 - 30 * min },
    now: t0 - 20 * min,
    change: { status: 'confirmed', statusChangedAt: null, attendance: null, announcedStatus: 'confirmed' },
    events: [['confirmed', 'confirmed', 'pending', t0 - 30 * min]],
  },
];

describe('reduceReservation', () => {
  it.each(cases)('$name', ({ before, now, change, events, deferred }) => {
    const r = facts(before);
    const result = reduceReservation(r, now, policy);
    expect(result.change).toEqual(change);
    expect(result.deferred).toBe(deferred ?? null);
    expect(result.events.map((e) => [e.type, e.status, e.previousStatus, e.time])).toEqual(events);
    for (const e of result.events) {
      expect(e.eventId).toBe(stableId('reservation-event', r.tenantId, r.reservationId, e.type));
      expect(e).toMatchObject({
        tenantId: r.tenantId,
        reservationId: r.reservationId,
        spaceId: r.spaceId,
        devEui: r.devEui,
        startsAt: r.startsAt,
        endsAt: r.endsAt,
        userId: r.userId,
      });
    }
    // The SQL selects by the same predicate: due exactly when there is something to do (or a judgement to retry).
    expect(isDue(r, now, policy)).toBe(change !== null || deferred !== undefined);
  });

  it.each(cases.filter((c) => c.change !== null))(
    'is idempotent: fed its own output, "$name" changes nothing and publishes nothing',
    ({ before, now, change }) => {
      const r = facts(before);
      const c = change!;
      const after: ReservationFacts = {
        ...r,
        status: c.status,
        announcedStatus: c.announcedStatus,
        attendanceCheckedAt: c.attendance?.checkedAt ?? r.attendanceCheckedAt,
        updatedAt: c.statusChangedAt ?? r.updatedAt,
      };
      expect(reduceReservation(after, now, policy)).toEqual({ change: null, events: [], deferred: null });
      expect(isDue(after, now, policy)).toBe(false);
    },
  );

  it('gives the same event ids on a re-run from the same row (a rolled-back tick)', () => {
    const r = facts({ announcedStatus: null });
    const first = reduceReservation(r, t0 + 20 * min, policy);
    const again = reduceReservation(r, t0 + 21 * min, policy);
    expect(first.events.map((e) => e.eventId)).toEqual(again.events.map((e) => e.eventId));
    expect(first.events.map((e) => e.type)).toEqual(['created', 'no-show']);
  });

  it('a silent sensor defers the judgement tick after tick, then the reservation expires; the sensor heard again in time makes it a no-show', () => {
    const silent = facts({ sensorHeardAt: t0 - 1 });
    const ticks = [t0 + 15 * min, t0 + 30 * min, t0 + 59 * min].map((now) =>
      reduceReservation(silent, now, policy),
    );
    expect(ticks.map((t) => [t.change, t.deferred])).toEqual([
      [null, 'sensor-silent'],
      [null, 'sensor-silent'],
      [null, 'sensor-silent'],
    ]);
    expect(reduceReservation(silent, t0 + 60 * min, policy).change?.status).toBe('expired');
    // Heard again at start + 40 min (still reporting free): the deferred judgement is made, a no-show.
    const heard = reduceReservation({ ...silent, sensorHeardAt: t0 + 40 * min }, t0 + 41 * min, policy);
    expect([heard.change?.status, heard.deferred]).toEqual(['no_show', null]);
  });
});
