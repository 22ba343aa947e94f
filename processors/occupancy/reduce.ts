import type { UplinkRecord } from '../../schemas/avro/records.js';

/**
 * Occupancy reducer (pure: no I/O imports, lint-enforced). Input: the space's current state and one decoded
 * uplink. Output: the next state and the effects to apply, as plain data. A frame older than the last applied
 * one (by network time, then fCnt) changes nothing: Kafka may redeliver, and gateways deliver late.
 * Debounce and the stale-sensor timeout (per-tenant policy) grow here in the processors issue.
 */
export type SpaceOccupancy = 'unknown' | 'free' | 'occupied';

export interface SpaceState {
  state: SpaceOccupancy;
  stateSince: number | null;
  lastEventTime: number | null;
  lastFCnt: number | null;
}

export type OccupancyEffect =
  | { type: 'record-uplink'; uplink: UplinkRecord }
  | {
      type: 'set-space-state';
      tenantId: string;
      spaceId: string;
      state: SpaceState;
      changed: boolean;
    };

export const initialSpaceState: SpaceState = {
  state: 'unknown',
  stateSince: null,
  lastEventTime: null,
  lastFCnt: null,
};

function isStale(state: SpaceState, uplink: UplinkRecord): boolean {
  if (state.lastEventTime === null) return false;
  if (uplink.time !== state.lastEventTime) return uplink.time < state.lastEventTime;
  return state.lastFCnt !== null && uplink.fCnt <= state.lastFCnt;
}

export function reduceOccupancy(
  state: SpaceState,
  uplink: UplinkRecord,
): { state: SpaceState; effects: OccupancyEffect[] } {
  const effects: OccupancyEffect[] = [{ type: 'record-uplink', uplink }];
  if (uplink.spaceId === null || uplink.occupied === null || isStale(state, uplink))
    return { state, effects };
  const next: SpaceOccupancy = uplink.occupied ? 'occupied' : 'free';
  const changed = next !== state.state;
  const nextState: SpaceState = {
    state: next,
    stateSince: changed ? uplink.time : state.stateSince,
    lastEventTime: uplink.time,
    lastFCnt: uplink.fCnt,
  };
  effects.push({
    type: 'set-space-state',
    tenantId: uplink.tenantId,
    spaceId: uplink.spaceId,
    state: nextState,
    changed,
  });
  return { state: nextState, effects };
}
