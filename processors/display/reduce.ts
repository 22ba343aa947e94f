import { stableId } from '../shared/stable-id.js';

/**
 * Display state machine, one display (beside one space) at a time. Pure: no I/O, no clock.
 *
 * Promises (times are epoch ms):
 * - What the display must show, first match wins: device out of service → space blocked (both `maintenance`) →
 *   unexpired admin override → active reservation (`reserved`) → reservation starting within
 *   `reservationLeadMs` (`reserved-soon`) → the debounced sensor state → the last stable state while the sensor
 *   is stale (same value: occupancy keeps it) → `free`.
 *   Decision: an override ranks below maintenance, so a broken or blocked space can never be shown as
 *   available by an override; lift the block instead.
 * - Reservations: one is active from its `reservation-started` until `reservation-ended`, `-cancelled` or its
 *   `endsAt`, whichever comes first; a booked one that never starts (no-show) is not shown once `startsAt`
 *   passed. Time comes from events: the current time is the latest `at`/`now` seen (events may arrive a little
 *   out of order; the clock never goes back).
 * - A `display-command` effect is emitted only when the look (kind, colour, blink) changes. Its `commandId` is
 *   derived from the display and a per-display sequence kept in the state, so a replay from the same stored
 *   state yields the same id.
 * - Reconciliation: on `tick`, if the last command is unconfirmed for `confirmTimeoutMs`, the same command
 *   (same id, `resend` + 1) is emitted again. A `txack` confirms unless the policy requires an `ack`; an ack
 *   with `acknowledged: false` does not. Confirmations for other command ids are ignored.
 * - Requests (reservation created/started, override set) are checked against the space-state graph and
 *   rejected as a typed result that leaves the state unchanged. Facts (sensor, lifecycle, confirmations, ends,
 *   cancellations, clears, ticks) always apply, with one exception: a sensor fact older than the last one
 *   applied (its `at` before the previous `at`) is dropped — a repeat of an earlier occupancy change, which the
 *   at-least-once outbox may deliver again after newer ones, must not put an old state back on the display.
 */
export type DisplayKind = 'free' | 'occupied' | 'reserved' | 'reserved-soon' | 'maintenance';
export type SpaceStatus = 'free' | 'occupied' | 'reserved' | 'maintenance';
export type ShowReason =
  | 'out-of-service'
  | 'blocked'
  | 'override'
  | 'reservation-active'
  | 'reservation-soon'
  | 'sensor'
  | 'sensor-stale'
  | 'default';

/** Colour as RGB 0..255; the encoder reorders bytes for the device. */
export interface Look {
  colour: readonly [number, number, number];
  blink: boolean;
}

export interface DisplayPolicy {
  looks: Record<DisplayKind, Look>;
  /** A booked reservation shows as `reserved-soon` this long (ms) before it starts. */
  reservationLeadMs: number;
  /** An unconfirmed command is sent again after this long (ms), on the next tick. */
  confirmTimeoutMs: number;
  /** Require a device `ack` (confirmed downlink); otherwise the gateway's `txack` suffices. */
  requireAck: boolean;
}

export const defaultDisplayPolicy: Readonly<DisplayPolicy> = Object.freeze<DisplayPolicy>({
  looks: {
    free: { colour: [0, 255, 0], blink: false },
    occupied: { colour: [255, 0, 0], blink: false },
    reserved: { colour: [0, 0, 255], blink: false },
    'reserved-soon': { colour: [0, 0, 255], blink: true },
    maintenance: { colour: [255, 160, 0], blink: false },
  },
  reservationLeadMs: 15 * 60_000,
  confirmTimeoutMs: 5 * 60_000,
  requireAck: false,
});

/**
 * Edges a REQUEST may cause; facts may move anywhere. Maintenance has no outgoing request edges: only the
 * device lifecycle (out of service / blocked cleared) leaves it.
 */
export const allowedTransitions: Readonly<Record<SpaceStatus, readonly SpaceStatus[]>> = Object.freeze({
  free: ['occupied', 'reserved', 'maintenance'],
  occupied: ['free', 'reserved', 'maintenance'],
  reserved: ['free', 'occupied', 'maintenance'],
  maintenance: [],
});

export interface Reservation {
  reservationId: string;
  startsAt: number;
  endsAt: number;
  started: boolean;
}

export interface DisplayCommand {
  commandId: string;
  kind: DisplayKind;
  look: Look;
  reason: ShowReason;
  sentAt: number;
  resend: number;
  confirmed: boolean;
}

export interface DisplayState {
  tenantId: string;
  /** DevEUI of the display device. */
  displayId: string;
  spaceId: string;
  clock: number;
  sensor: { state: 'unknown' | 'free' | 'occupied'; stale: boolean };
  /** `at` of the last sensor fact applied (null before the first; absent in states stored before it existed). */
  sensorAt?: number | null;
  outOfService: boolean;
  blocked: boolean;
  override: { kind: DisplayKind; expiresAt: number } | null;
  /** Booked or started, not ended; pruned when they end. */
  reservations: Reservation[];
  commandSeq: number;
  lastCommand: DisplayCommand | null;
}

export function initialDisplayState(tenantId: string, displayId: string, spaceId: string): DisplayState {
  return {
    tenantId,
    displayId,
    spaceId,
    clock: 0,
    sensor: { state: 'unknown', stale: false },
    sensorAt: null,
    outOfService: false,
    blocked: false,
    override: null,
    reservations: [],
    commandSeq: 0,
    lastCommand: null,
  };
}

interface Happened {
  eventId: string;
  at: number;
}
export type DisplayEvent =
  | (Happened & { type: 'sensor-changed'; state: 'unknown' | 'free' | 'occupied'; stale: boolean })
  | (Happened & { type: 'reservation-created'; reservationId: string; startsAt: number; endsAt: number })
  | (Happened & { type: 'reservation-cancelled'; reservationId: string })
  | (Happened & { type: 'reservation-started'; reservationId: string })
  | (Happened & { type: 'reservation-ended'; reservationId: string })
  | (Happened & { type: 'override-set'; kind: DisplayKind; expiresAt: number })
  | (Happened & { type: 'override-cleared' })
  | (Happened & { type: 'lifecycle-changed'; outOfService: boolean; blocked: boolean })
  | (Happened & {
      type: 'downlink-confirmed';
      commandId: string;
      kind: 'ack' | 'txack';
      acknowledged: boolean | null;
    })
  | { type: 'tick'; now: number };

export type DisplayEffect = {
  type: 'display-command';
  tenantId: string;
  displayId: string;
  spaceId: string;
} & Omit<DisplayCommand, 'confirmed'>;

export type RejectionCode =
  'TRANSITION_NOT_ALLOWED' | 'UNKNOWN_RESERVATION' | 'RESERVATION_OVERLAP' | 'INVALID_INTERVAL';

export type DisplayResult =
  | { ok: true; state: DisplayState; effects: DisplayEffect[] }
  | {
      ok: false;
      state: DisplayState;
      effects: [];
      rejection: { code: RejectionCode; eventId: string; from: SpaceStatus; to: SpaceStatus | null };
    };

export function statusOf(kind: DisplayKind): SpaceStatus {
  return kind === 'reserved-soon' ? 'reserved' : kind;
}

/** What the display must show at `now`, by the priority list above. */
export function mustShow(
  state: DisplayState,
  policy: DisplayPolicy,
  now: number,
): { kind: DisplayKind; reason: ShowReason } {
  if (state.outOfService) return { kind: 'maintenance', reason: 'out-of-service' };
  if (state.blocked) return { kind: 'maintenance', reason: 'blocked' };
  if (state.override && state.override.expiresAt > now)
    return { kind: state.override.kind, reason: 'override' };
  const live = state.reservations.filter((r) => r.endsAt > now);
  if (live.some((r) => r.started)) return { kind: 'reserved', reason: 'reservation-active' };
  if (live.some((r) => !r.started && r.startsAt > now && r.startsAt - now <= policy.reservationLeadMs))
    return { kind: 'reserved-soon', reason: 'reservation-soon' };
  if (state.sensor.state !== 'unknown')
    return { kind: state.sensor.state, reason: state.sensor.stale ? 'sensor-stale' : 'sensor' };
  return { kind: 'free', reason: 'default' };
}

export function reduceDisplay(
  state: DisplayState,
  event: DisplayEvent,
  policy: DisplayPolicy = defaultDisplayPolicy,
): DisplayResult {
  const now = Math.max(state.clock, event.type === 'tick' ? event.now : event.at);
  const before = statusOf(mustShow(state, policy, now).kind);
  const applied = applyEvent({ ...state, clock: now }, event, policy);
  if ('code' in applied)
    return {
      ok: false,
      state,
      effects: [],
      rejection: {
        code: applied.code,
        eventId: 'eventId' in event ? event.eventId : '',
        from: before,
        to: null,
      },
    };
  const next = prune(applied.state, now);
  const show = mustShow(next, policy, now);
  const request = applied.request;
  const target = request ? (request.target ?? statusOf(show.kind)) : before;
  if (request && target !== before && !allowedTransitions[before].includes(target))
    return {
      ok: false,
      state,
      effects: [],
      rejection: { code: 'TRANSITION_NOT_ALLOWED', eventId: request.eventId, from: before, to: target },
    };
  return command(next, show, policy, now, event.type === 'tick');
}

/** A request names the status it asks for; null means "whatever the display then shows". */
type Request = { eventId: string; target: SpaceStatus | null };
type Applied = { state: DisplayState; request: Request | null } | { code: RejectionCode };

function applyEvent(state: DisplayState, event: DisplayEvent, policy: DisplayPolicy): Applied {
  const fact = (next: DisplayState): Applied => ({ state: next, request: null });
  switch (event.type) {
    case 'tick':
      return fact(state);
    case 'sensor-changed':
      if (event.at < (state.sensorAt ?? -Infinity)) return fact(state);
      return fact({ ...state, sensor: { state: event.state, stale: event.stale }, sensorAt: event.at });
    case 'lifecycle-changed':
      return fact({ ...state, outOfService: event.outOfService, blocked: event.blocked });
    case 'override-cleared':
      return fact({ ...state, override: null });
    case 'reservation-cancelled':
    case 'reservation-ended':
      return fact({
        ...state,
        reservations: state.reservations.filter((r) => r.reservationId !== event.reservationId),
      });
    case 'downlink-confirmed': {
      const last = state.lastCommand;
      const confirms = event.kind === 'ack' ? event.acknowledged !== false : !policy.requireAck;
      if (!last || last.commandId !== event.commandId || !confirms) return fact(state);
      return fact({ ...state, lastCommand: { ...last, confirmed: true } });
    }
    case 'override-set':
      if (event.expiresAt <= event.at) return { code: 'INVALID_INTERVAL' };
      return {
        state: { ...state, override: { kind: event.kind, expiresAt: event.expiresAt } },
        request: { eventId: event.eventId, target: statusOf(event.kind) },
      };
    case 'reservation-created': {
      if (event.endsAt <= event.startsAt) return { code: 'INVALID_INTERVAL' };
      const existing = state.reservations.find((r) => r.reservationId === event.reservationId);
      if (existing) return fact(state); // a redelivered creation
      if (state.reservations.some((r) => r.startsAt < event.endsAt && event.startsAt < r.endsAt))
        return { code: 'RESERVATION_OVERLAP' };
      const reservation: Reservation = {
        reservationId: event.reservationId,
        startsAt: event.startsAt,
        endsAt: event.endsAt,
        started: false,
      };
      return {
        state: { ...state, reservations: [...state.reservations, reservation] },
        request: { eventId: event.eventId, target: null },
      };
    }
    case 'reservation-started': {
      const existing = state.reservations.find((r) => r.reservationId === event.reservationId);
      if (!existing) return { code: 'UNKNOWN_RESERVATION' };
      return {
        state: {
          ...state,
          reservations: state.reservations.map((r) => (r === existing ? { ...r, started: true } : r)),
        },
        request: { eventId: event.eventId, target: 'reserved' },
      };
    }
  }
}

function prune(state: DisplayState, now: number): DisplayState {
  const reservations = state.reservations.filter((r) => r.endsAt > now);
  const override = state.override && state.override.expiresAt > now ? state.override : null;
  if (reservations.length === state.reservations.length && override === state.override) return state;
  return { ...state, reservations, override };
}

function sameLook(a: Look, b: Look): boolean {
  return a.blink === b.blink && a.colour.every((c, i) => c === b.colour[i]);
}

function command(
  state: DisplayState,
  show: { kind: DisplayKind; reason: ShowReason },
  policy: DisplayPolicy,
  now: number,
  isTick: boolean,
): DisplayResult {
  const look = policy.looks[show.kind];
  const last = state.lastCommand;
  if (last && last.kind === show.kind && sameLook(last.look, look)) {
    if (!isTick || last.confirmed || now - last.sentAt < policy.confirmTimeoutMs)
      return { ok: true, state, effects: [] };
    const resent: DisplayCommand = { ...last, sentAt: now, resend: last.resend + 1 };
    return { ok: true, state: { ...state, lastCommand: resent }, effects: [effectOf(state, resent)] };
  }
  const seq = state.commandSeq + 1;
  const next: DisplayCommand = {
    commandId: stableId('display-command', state.tenantId, state.displayId, seq),
    kind: show.kind,
    look,
    reason: show.reason,
    sentAt: now,
    resend: 0,
    confirmed: false,
  };
  return {
    ok: true,
    state: { ...state, commandSeq: seq, lastCommand: next },
    effects: [effectOf(state, next)],
  };
}

function effectOf(state: DisplayState, c: DisplayCommand): DisplayEffect {
  return {
    type: 'display-command',
    tenantId: state.tenantId,
    displayId: state.displayId,
    spaceId: state.spaceId,
    commandId: c.commandId,
    kind: c.kind,
    look: c.look,
    reason: c.reason,
    sentAt: c.sentAt,
    resend: c.resend,
  };
}
