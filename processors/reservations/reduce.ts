import { stableId } from '../shared/stable-id.js';

/**
 * The reservation lifecycle, one reservation at a time. Pure: no I/O, no clock (`now` is an argument).
 *
 * Promises (times are epoch ms):
 * - End: a `pending` or `confirmed` reservation whose end passed becomes `expired` — or `no_show` when the
 *   no-show judgement below is due at the same time and finds, with evidence, the space never occupied from the
 *   start to the end (the job was down; a reservation shorter than the grace is never judged, it expires).
 * - No-show: a `confirmed` reservation whose start passed by `noShowGraceMs`, not yet judged, is judged once:
 *   its space was occupied at some moment from the start on (`occupiedSince` not null: occupied at the start, or
 *   an `occupied` change since) → it stays confirmed, attendance recorded with `arrivedAt`; never occupied →
 *   `no_show`, but only with evidence (below). A space without a sensor cannot be judged: attendance is recorded
 *   as checked, it will only expire.
 *   Rationale: the sensor cannot tell whose car it is, so any occupancy counts as the booker's (no false no-shows
 *   when someone parks early or the previous car overstays); the grace covers the pipeline's latency too.
 * - Evidence: "never occupied" is the absence of an occupancy change, and an absence proves nothing when the
 *   sensor is dead or the pipeline is behind; a no-show frees the space of a customer who may be parked in it.
 *   So `no_show` needs all of:
 *   1. the space's sensor heard at or after the judgement's point, start + grace (`sensorHeardAt`, a frame the
 *      occupancy processor applied). Not merely after the start: a frame at start + 1 min proves nothing about a
 *      car arriving at start + 5 min if the sensor died in between; a frame after start + grace shows the sensor
 *      alive through the whole window it is judged on, and since one sensor's frames are applied in order, every
 *      frame it sent in that window (the sensors report on change) was applied before it;
 *   2. the occupancy consumer caught up (`pipelineCaughtUp`: its lag within a small bound for a settle time,
 *      processors/shared/lag-gate.ts), so that the frames heard were also applied to occupancy_changes;
 *   3. no arrival pending in the occupancy debounce (`arrivalPending`: occupied readings not yet confirmed).
 *   Without it the judgement is deferred (`deferred` says why): nothing is recorded, the next tick tries again,
 *   and at the end the reservation simply expires — never a no-show without evidence. An arrival needs no such
 *   evidence: an occupancy seen is evidence enough.
 * - `cancelled`, `expired` and `no_show` are final: the reducer never changes them.
 * - Events: every status the reservation reached since the last published one (`announcedStatus`) is published,
 *   in order — `created` (the status it was created with) when nothing was published yet, then `confirmed`,
 *   `cancelled`, `expired` or `no-show`. Each event id is derived from (tenant, reservation, type): each type
 *   happens at most once to a reservation, so a re-run publishes the same ids and consumers drop repeats.
 * - Idempotent: fed its own output (status and announcement written back), it returns no change and no event.
 */
export type ReservationStatus = 'pending' | 'confirmed' | 'expired' | 'cancelled' | 'no_show';
export type ReservationEventType = 'created' | 'confirmed' | 'cancelled' | 'expired' | 'no-show';

export interface ReservationPolicy {
  /** How long after the start (ms) an unoccupied space makes a confirmed reservation a no-show. */
  noShowGraceMs: number;
}

export const defaultReservationPolicy: Readonly<ReservationPolicy> = Object.freeze({
  noShowGraceMs: 15 * 60_000,
});

/** A reservation row as the job reads it, with what it knows of its space's occupancy. */
export interface ReservationFacts {
  tenantId: string;
  reservationId: string;
  spaceId: string;
  startsAt: number;
  endsAt: number;
  status: ReservationStatus;
  /** The last status published as an event; null: none yet. */
  announcedStatus: ReservationStatus | null;
  userId: string | null;
  createdAt: number;
  cancelledAt: number | null;
  updatedAt: number;
  attendanceCheckedAt: number | null;
  /** The space has a sensor, so its occupancy can be judged. */
  hasSensor: boolean;
  /** The space's sensor (for the event), if any. */
  devEui: string | null;
  /**
   * Since when the space was occupied from the start on: the start when it was occupied at the start, else the
   * first `occupied` change after it (up to `now`); null when never. Only needed (and read) for a judgement.
   */
  occupiedSince: number | null;
  /**
   * When the occupancy processor last applied a frame of the space's sensor (spaces.last_event_time, network
   * time; heartbeats count); null: never.
   */
  sensorHeardAt: number | null;
  /** The occupancy debounce holds occupied readings not yet confirmed (spaces.pending_occupied). */
  arrivalPending: boolean;
  /** The occupancy consumer has been caught up for the settle time, as of this tick (the lag gate is open). */
  pipelineCaughtUp: boolean;
}

export interface ReservationEvent {
  eventId: string;
  tenantId: string;
  devEui: string | null;
  reservationId: string;
  spaceId: string;
  type: ReservationEventType;
  status: ReservationStatus;
  previousStatus: ReservationStatus | null;
  startsAt: number;
  endsAt: number;
  userId: string | null;
  time: number;
}

/** What to write back: the new status (with the time it changed), the attendance, the announcement. */
export interface ReservationChange {
  status: ReservationStatus;
  statusChangedAt: number | null;
  attendance: { checkedAt: number; arrivedAt: number | null } | null;
  announcedStatus: ReservationStatus;
}

/** Why a due no-show judgement was not made (see "Evidence" above). */
export type DeferredReason = 'pipeline-behind' | 'sensor-silent' | 'arrival-pending';

export interface ReservationResult {
  /** null: nothing to write. */
  change: ReservationChange | null;
  events: ReservationEvent[];
  /** A due judgement lacked evidence and was not made (the reservation stays unjudged, or expired); else null. */
  deferred: DeferredReason | null;
}

const live: readonly ReservationStatus[] = ['pending', 'confirmed'];

/** Whether the job has anything to do with `r` at `now` (the same predicate its SQL selects by). */
export function isDue(r: ReservationFacts, now: number, policy: ReservationPolicy): boolean {
  return (
    r.announcedStatus !== r.status ||
    (live.includes(r.status) && r.endsAt <= now) ||
    attendanceDue(r, now, policy)
  );
}

/** Whether the no-show judgement is due (and so `occupiedSince` must be read). */
export function attendanceDue(r: ReservationFacts, now: number, policy: ReservationPolicy): boolean {
  return (
    r.status === 'confirmed' && r.attendanceCheckedAt === null && r.startsAt + policy.noShowGraceMs <= now
  );
}

export function reduceReservation(
  r: ReservationFacts,
  now: number,
  policy: ReservationPolicy = defaultReservationPolicy,
): ReservationResult {
  let status = r.status;
  let statusChangedAt: number | null = null;
  let attendance: ReservationChange['attendance'] = null;
  let deferred: DeferredReason | null = null;
  if (attendanceDue(r, now, policy)) {
    if (!r.hasSensor) attendance = { checkedAt: now, arrivedAt: null };
    else if (r.occupiedSince !== null) attendance = { checkedAt: now, arrivedAt: r.occupiedSince };
    else {
      deferred = missingEvidence(r, policy);
      if (deferred === null) {
        status = 'no_show';
        statusChangedAt = now;
      }
    }
  }
  if (live.includes(status) && r.endsAt <= now) {
    status = 'expired';
    statusChangedAt = now;
  }
  const events = announcements(r, status, statusChangedAt);
  if (status === r.status && attendance === null && events.length === 0)
    return { change: null, events, deferred };
  return { change: { status, statusChangedAt, attendance, announcedStatus: status }, events, deferred };
}

/** What is missing to judge a space never occupied a no-show; null: the evidence is complete. */
function missingEvidence(r: ReservationFacts, policy: ReservationPolicy): DeferredReason | null {
  if (!r.pipelineCaughtUp) return 'pipeline-behind';
  if (r.sensorHeardAt === null || r.sensorHeardAt < r.startsAt + policy.noShowGraceMs) return 'sensor-silent';
  if (r.arrivalPending) return 'arrival-pending';
  return null;
}

/** The events from the last announced status to `status`, in the order they happened. */
function announcements(
  r: ReservationFacts,
  status: ReservationStatus,
  statusChangedAt: number | null,
): ReservationEvent[] {
  if (r.announcedStatus === status) return [];
  const steps: Array<{ type: ReservationEventType; status: ReservationStatus; time: number }> = [];
  // Unknown history is read the simplest way: a row first seen `pending` was created pending, any other was
  // created confirmed (as the API creates them); a `confirmed` event only for a row seen pending, then confirmed.
  const createdAs: ReservationStatus = r.status === 'pending' ? 'pending' : 'confirmed';
  if (r.announcedStatus === null) steps.push({ type: 'created', status: createdAs, time: r.createdAt });
  const from = r.announcedStatus ?? createdAs;
  if (from === 'pending' && r.status === 'confirmed')
    steps.push({ type: 'confirmed', status: 'confirmed', time: r.updatedAt });
  if (status === 'cancelled') steps.push({ type: 'cancelled', status, time: r.cancelledAt ?? r.updatedAt });
  if (status === 'expired' || status === 'no_show')
    steps.push({
      type: status === 'expired' ? 'expired' : 'no-show',
      status,
      time: statusChangedAt ?? r.updatedAt,
    });
  let previous = r.announcedStatus;
  return steps.map((s) => {
    const event: ReservationEvent = {
      eventId: stableId('reservation-event', r.tenantId, r.reservationId, s.type),
      tenantId: r.tenantId,
      devEui: r.devEui,
      reservationId: r.reservationId,
      spaceId: r.spaceId,
      type: s.type,
      status: s.status,
      previousStatus: previous,
      startsAt: r.startsAt,
      endsAt: r.endsAt,
      userId: r.userId,
      time: s.time,
    };
    previous = s.status;
    return event;
  });
}
