import { stableId } from '../shared/stable-id.js';

/**
 * Device and gateway liveness, one entity at a time. Pure: no I/O, no clock (ticks carry the time; epoch ms).
 *
 * Promises:
 * - Raise: on a tick with `now - lastHeard >= silentAfterMs` an alert is raised once. Its `at` is
 *   `lastHeard + silentAfterMs` (not the tick's time), so replays produce the same effect and id. An entity
 *   never heard raises nothing (that is provisioning, not liveness).
 * - Clear with hysteresis (the debounce against flapping): after an alert, the entity must be heard
 *   `clearAfterHeard` times without falling silent again before the alert clears. A silence during recovery
 *   resets the count and raises nothing new (the alert is still open). So a flapping gateway yields one open
 *   alert, not a raise/clear pair per flap.
 * - Frames may arrive out of order: `lastHeard` is the latest time heard, never moved back.
 * - Assumes the network server's clock and the processor's clock agree to well under `silentAfterMs`.
 */
export type EntityKind = 'device' | 'gateway';

export interface LivenessPolicy {
  /** Silence (ms) after which an alert is raised. */
  silentAfterMs: number;
  /** Frames heard after an alert before it clears; >= 1. */
  clearAfterHeard: number;
}

/**
 * A device is late after its expected uplink interval plus a grace (the issue says "its expected interval";
 * the grace absorbs jitter and one lost frame would otherwise raise at once). Two uplinks clear its alert.
 */
export function devicePolicy(expectedIntervalMs: number, graceMs = expectedIntervalMs / 2): LivenessPolicy {
  return { silentAfterMs: expectedIntervalMs + graceMs, clearAfterHeard: 2 };
}

/** A gateway not heard for N minutes (default 10); ChirpStack gateway stats come every 30 s, so 3 frames ≈ 1 min. */
export function gatewayPolicy(silentMinutes = 10): LivenessPolicy {
  return { silentAfterMs: silentMinutes * 60_000, clearAfterHeard: 3 };
}

export interface LivenessState {
  kind: EntityKind;
  /** Null for a gateway shared by tenants; alerts then go to the operator. */
  tenantId: string | null;
  /** DevEUI or gateway id. */
  id: string;
  lastHeard: number | null;
  alert: { eventId: string; raisedAt: number; heardSince: number } | null;
}

export function initialLivenessState(kind: EntityKind, tenantId: string | null, id: string): LivenessState {
  return { kind, tenantId, id, lastHeard: null, alert: null };
}

export type LivenessEvent = { type: 'heard'; at: number } | { type: 'tick'; now: number };

export type LivenessEffect = {
  type: 'liveness-alert';
  eventId: string;
  kind: EntityKind;
  tenantId: string | null;
  id: string;
  state: 'raised' | 'cleared';
  at: number;
  lastHeard: number;
  /** The alert a `cleared` closes (its raise's eventId); equal to eventId for `raised`. */
  alertId: string;
};

export function reduceLiveness(
  state: LivenessState,
  event: LivenessEvent,
  policy: LivenessPolicy,
): { state: LivenessState; effects: LivenessEffect[] } {
  if (event.type === 'heard') {
    const lastHeard = Math.max(state.lastHeard ?? event.at, event.at);
    const alert = state.alert;
    if (!alert) return { state: { ...state, lastHeard }, effects: [] };
    // Frames from before the alert's raise do not count towards recovery.
    const heardSince = event.at > alert.raisedAt ? alert.heardSince + 1 : alert.heardSince;
    if (heardSince < Math.max(1, policy.clearAfterHeard))
      return { state: { ...state, lastHeard, alert: { ...alert, heardSince } }, effects: [] };
    return {
      state: { ...state, lastHeard, alert: null },
      effects: [
        {
          type: 'liveness-alert',
          eventId: stableId('liveness-cleared', alert.eventId),
          kind: state.kind,
          tenantId: state.tenantId,
          id: state.id,
          state: 'cleared',
          at: event.at,
          lastHeard,
          alertId: alert.eventId,
        },
      ],
    };
  }
  if (state.lastHeard === null || event.now - state.lastHeard < policy.silentAfterMs)
    return { state, effects: [] };
  if (state.alert) {
    // Silent again while recovering: the recovery starts over, the open alert stays.
    if (state.alert.heardSince === 0) return { state, effects: [] };
    return { state: { ...state, alert: { ...state.alert, heardSince: 0 } }, effects: [] };
  }
  const raisedAt = state.lastHeard + policy.silentAfterMs;
  const eventId = stableId('liveness-raised', state.kind, state.tenantId ?? '-', state.id, raisedAt);
  return {
    state: { ...state, alert: { eventId, raisedAt, heardSince: 0 } },
    effects: [
      {
        type: 'liveness-alert',
        eventId,
        kind: state.kind,
        tenantId: state.tenantId,
        id: state.id,
        state: 'raised',
        at: raisedAt,
        lastHeard: state.lastHeard,
        alertId: eventId,
      },
    ],
  };
}
