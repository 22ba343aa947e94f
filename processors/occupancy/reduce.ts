import type { UplinkRecord } from '../../schemas/avro/records.js';
import { stableId } from '../shared/stable-id.js';

/**
 * Occupancy reducer, one space at a time (pure: no I/O imports, lint-enforced; no clock — time comes in events).
 *
 * Promises (all times are epoch ms):
 * - Order: frames are ordered by network time (`uplink.time`). A frame older than the last accepted one is
 *   dropped as `out-of-order`; one with the same time and an fCnt not above the last, or the same fCnt from the
 *   same device within `duplicateWindowMs`, is dropped as `duplicate` (Kafka redelivers; a frame can arrive by
 *   two integrations). Dropped frames change nothing and are reported by a `frame-dropped` effect, to be counted.
 * - fCnt reset: fCnt restarts at 0 after an OTAA rejoin, an ABP reboot, or a 32-bit wrap. fCnt alone therefore
 *   cannot order frames, so a frame with a LATER network time and a lower fCnt is accepted and becomes the new
 *   baseline (flagged `fCntReset` on the record effect). A frame from another device (sensor swapped on the
 *   space) is ordered by time only.
 * - Debounce: a change of the stable state needs `confirmCount` consecutive readings of the new value whose
 *   times all lie within `confirmWindowMs` of the last of them (inclusive). A reading equal to the stable state
 *   cancels a pending change. From `unknown` the same rule applies. Frames without occupancy (heartbeats)
 *   neither confirm nor cancel. The change's `at` is the time of the first reading of the confirming run (when
 *   the car arrived or left); `confirmedAt` is the reading that confirmed it.
 * - Stale: a `tick` with `now - lastEventTime >= staleAfterMs` flags the space stale; the stable state is kept.
 *   The next accepted frame (any frame, heartbeats included) clears the flag. The flag's `at` is
 *   `lastEventTime + staleAfterMs`, not the tick's time, so replays give the same effect and id. Assumes the
 *   network server's clock and the processor's clock agree to well under `staleAfterMs`.
 * - Effects carry ids derived from their inputs only (`stableId`), so re-running a batch yields the same ids.
 */
export type SpaceOccupancy = 'unknown' | 'free' | 'occupied';

export interface OccupancyPolicy {
  /** Consecutive matching readings that confirm a change; >= 1 (1 = no debounce). */
  confirmCount: number;
  /** The confirming readings must all lie within this span, ms. */
  confirmWindowMs: number;
  /** No accepted frame for this long (ms) flags the space stale on the next tick. */
  staleAfterMs: number;
  /** Same fCnt from the same device within this span (ms) is the same frame seen again. */
  duplicateWindowMs: number;
}

/**
 * The default: two matching readings within 10 s. Stale after 150 min: the issue leaves it open; the
 * sensors in use send a heartbeat at least hourly, so two missed heartbeats plus margin.
 */
export const defaultOccupancyPolicy: Readonly<OccupancyPolicy> = Object.freeze({
  confirmCount: 2,
  confirmWindowMs: 10_000,
  staleAfterMs: 150 * 60_000,
  duplicateWindowMs: 60_000,
});

export interface SpaceState {
  /** Last confirmed (stable) state. */
  state: SpaceOccupancy;
  stateSince: number | null;
  stale: boolean;
  /** Network time and fCnt of the last accepted frame, and its device. */
  lastEventTime: number | null;
  lastFCnt: number | null;
  lastDevEui: string | null;
  /** The run of readings that differ from the stable state, oldest first, at most `confirmCount` long. */
  pending: { occupied: boolean; times: number[] } | null;
}

export const initialSpaceState: SpaceState = {
  state: 'unknown',
  stateSince: null,
  stale: false,
  lastEventTime: null,
  lastFCnt: null,
  lastDevEui: null,
  pending: null,
};

export type OccupancyEvent =
  | { type: 'uplink'; uplink: UplinkRecord }
  /** The processor's clock; the I/O side sends it to spaces whose last frame is older than the stale time. */
  | { type: 'tick'; tenantId: string; spaceId: string; now: number };

export type DropReason = 'out-of-order' | 'duplicate';

export interface OccupancyChange {
  eventId: string;
  tenantId: string;
  spaceId: string;
  devEui: string;
  from: SpaceOccupancy;
  to: 'free' | 'occupied';
  at: number;
  confirmedAt: number;
}

export type OccupancyEffect =
  /** Every uplink is recorded raw (idempotent on `(tenant_id, event_id, time)`), dropped or not. */
  | { type: 'record-uplink'; uplink: UplinkRecord; fCntReset: boolean }
  | { type: 'frame-dropped'; reason: DropReason; tenantId: string; devEui: string; eventId: string }
  /** For the occupancy-changes hypertable and the Avro topic. */
  | ({ type: 'occupancy-changed' } & OccupancyChange)
  | {
      type: 'stale-changed';
      eventId: string;
      tenantId: string;
      spaceId: string;
      devEui: string | null;
      stale: boolean;
      at: number;
    }
  /** The space row to persist; emitted whenever the state object changed. */
  | { type: 'set-space-state'; tenantId: string; spaceId: string; state: SpaceState };

export interface OccupancyResult {
  state: SpaceState;
  effects: OccupancyEffect[];
}

type Classification = { kind: 'accept'; fCntReset: boolean } | { kind: 'drop'; reason: DropReason };

export function classifyFrame(
  state: SpaceState,
  uplink: UplinkRecord,
  policy: OccupancyPolicy,
): Classification {
  const last = state.lastEventTime;
  if (last === null) return { kind: 'accept', fCntReset: false };
  if (uplink.time < last) return { kind: 'drop', reason: 'out-of-order' };
  const sameDevice = state.lastDevEui === null || state.lastDevEui === uplink.devEui;
  if (!sameDevice) return { kind: 'accept', fCntReset: false };
  const lastFCnt = state.lastFCnt;
  if (uplink.time === last)
    return lastFCnt !== null && uplink.fCnt <= lastFCnt
      ? { kind: 'drop', reason: 'duplicate' }
      : { kind: 'accept', fCntReset: false };
  if (lastFCnt !== null && uplink.fCnt === lastFCnt && uplink.time - last <= policy.duplicateWindowMs)
    return { kind: 'drop', reason: 'duplicate' };
  return { kind: 'accept', fCntReset: lastFCnt !== null && uplink.fCnt < lastFCnt };
}

export function reduceOccupancy(
  state: SpaceState,
  event: OccupancyEvent,
  policy: OccupancyPolicy = defaultOccupancyPolicy,
): OccupancyResult {
  return event.type === 'tick' ? onTick(state, event, policy) : onUplink(state, event.uplink, policy);
}

function onTick(
  state: SpaceState,
  tick: Extract<OccupancyEvent, { type: 'tick' }>,
  policy: OccupancyPolicy,
): OccupancyResult {
  if (state.stale || state.lastEventTime === null || tick.now - state.lastEventTime < policy.staleAfterMs)
    return { state, effects: [] };
  const at = state.lastEventTime + policy.staleAfterMs;
  const next: SpaceState = { ...state, stale: true };
  return {
    state: next,
    effects: [
      {
        type: 'stale-changed',
        eventId: stableId('occupancy-stale', tick.tenantId, tick.spaceId, at),
        tenantId: tick.tenantId,
        spaceId: tick.spaceId,
        devEui: state.lastDevEui,
        stale: true,
        at,
      },
      { type: 'set-space-state', tenantId: tick.tenantId, spaceId: tick.spaceId, state: next },
    ],
  };
}

function onUplink(state: SpaceState, uplink: UplinkRecord, policy: OccupancyPolicy): OccupancyResult {
  const { spaceId } = uplink;
  if (spaceId === null) return { state, effects: [{ type: 'record-uplink', uplink, fCntReset: false }] };
  const verdict = classifyFrame(state, uplink, policy);
  if (verdict.kind === 'drop')
    return {
      state,
      effects: [
        { type: 'record-uplink', uplink, fCntReset: false },
        {
          type: 'frame-dropped',
          reason: verdict.reason,
          tenantId: uplink.tenantId,
          devEui: uplink.devEui,
          eventId: uplink.eventId,
        },
      ],
    };

  const effects: OccupancyEffect[] = [{ type: 'record-uplink', uplink, fCntReset: verdict.fCntReset }];
  let next: SpaceState = {
    ...state,
    stale: false,
    lastEventTime: uplink.time,
    lastFCnt: uplink.fCnt,
    lastDevEui: uplink.devEui,
  };
  if (state.stale)
    effects.push({
      type: 'stale-changed',
      eventId: stableId('occupancy-fresh', uplink.tenantId, spaceId, uplink.eventId),
      tenantId: uplink.tenantId,
      spaceId,
      devEui: uplink.devEui,
      stale: false,
      at: uplink.time,
    });

  if (uplink.occupied !== null) {
    const debounced = debounce(next, uplink.occupied, uplink.time, policy);
    next = debounced.state;
    if (debounced.change)
      effects.push({
        type: 'occupancy-changed',
        eventId: stableId('occupancy-change', uplink.tenantId, spaceId, uplink.eventId),
        tenantId: uplink.tenantId,
        spaceId,
        devEui: uplink.devEui,
        from: state.state,
        to: debounced.change.to,
        at: debounced.change.at,
        confirmedAt: uplink.time,
      });
  }
  effects.push({ type: 'set-space-state', tenantId: uplink.tenantId, spaceId, state: next });
  return { state: next, effects };
}

function debounce(
  state: SpaceState,
  occupied: boolean,
  time: number,
  policy: OccupancyPolicy,
): { state: SpaceState; change: { to: 'free' | 'occupied'; at: number } | null } {
  const value: 'free' | 'occupied' = occupied ? 'occupied' : 'free';
  if (value === state.state) return { state: { ...state, pending: null }, change: null };
  const previous = state.pending?.occupied === occupied ? state.pending.times : [];
  const times = [...previous, time]
    .filter((t) => time - t <= policy.confirmWindowMs)
    .slice(-Math.max(1, policy.confirmCount));
  if (times.length < policy.confirmCount)
    return { state: { ...state, pending: { occupied, times } }, change: null };
  const at = times[0] ?? time;
  return {
    state: { ...state, state: value, stateSince: at, pending: null },
    change: { to: value, at },
  };
}
