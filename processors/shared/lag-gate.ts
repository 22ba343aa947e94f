/**
 * The lag gate: the absence of something in a consumer's output (no frame heard, no occupancy change) is only
 * evidence while that consumer sees what the network hears. After an outage of the processor, the broker or the
 * database, the stored results are old for every entity at once while their uplinks still wait in the topic (or
 * in the bridge, which publishes its backlog once the broker is back); acting on the silence then (liveness
 * raising alerts, the reservation job judging no-shows) would be acting on a gap in the pipeline. So a caller acts
 * on silence only once the consumer has been caught up (lag at most `maxLag` records) for `settleMs` without
 * interruption; an unknown lag (broker unreachable) closes the gate like a large one. Pure: the lag and the time
 * come in (processors/runtime/lag.ts `storedLag` measures the lag).
 */
export interface RaiseGatePolicy {
  /** The largest consumer lag (records) at which the processor counts as caught up. */
  maxLag: number;
  /** How long (ms) it must have been caught up before silence counts again. */
  settleMs: number;
}

/** `openSince`: since when the consumer has been caught up without interruption (epoch ms), or null. */
export interface RaiseGate {
  openSince: number | null;
}

/** A closed gate: a starting processor proves it is caught up before it acts on silence. */
export const closedGate: RaiseGate = { openSince: null };

/** `mayRaise`: the consumer has been caught up for `settleMs`: silence may be acted on now. */
export function observeLag(
  gate: RaiseGate,
  observation: { now: number; lag: number | null },
  policy: RaiseGatePolicy,
): { gate: RaiseGate; mayRaise: boolean } {
  if (observation.lag === null || observation.lag > policy.maxLag)
    return { gate: closedGate, mayRaise: false };
  const openSince = gate.openSince ?? observation.now;
  return { gate: { openSince }, mayRaise: observation.now - openSince >= policy.settleMs };
}
