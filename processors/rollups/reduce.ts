/**
 * In-stream rollups for one site (the state holds every space of the site, since site rows need them all).
 * Pure: no I/O, no clock. TimescaleDB continuous aggregates are refused on RLS tables, so rows are computed here
 * and written by the I/O side as upserts keyed by (tenant_id, space_id | site_id | dev_eui, size, bucket_start).
 *
 * Promises (times epoch ms; buckets aligned to UTC epoch multiples of their size):
 * - Occupancy rows (per space and per site, 5-minute and hourly) are emitted when a bucket closes, i.e. when
 *   the site's watermark (latest change time or tick seen) reaches its end, and again whenever a later-arriving
 *   event changes a closed bucket. Only rows whose values changed are emitted.
 * - Between changes a space keeps its state until the next change or the watermark. Time before a space's first
 *   known change is unobserved.
 * - occupiedMs / observedMs are exact integer sums of time in the bucket; `occupancyRate = occupiedMs /
 *   observedMs` (null when nothing was observed): with full observation this is the fraction of the bucket
 *   occupied, and time before a sensor's first report does not dilute it. Site rows sum their spaces.
 * - An occupied period runs from a change to occupied until the next change to free (repeated occupied changes
 *   do not split it). Dwell: mean and median duration of periods ENDING in the bucket (median of an even count
 *   is the mean of the middle two). Turnover: periods STARTING in the bucket.
 * - Device health rows (per device, both sizes) are emitted on every uplink that changes them: uplink count,
 *   last seen, last and minimum battery, RSSI/SNR min and mean. Duplicates (same eventId) count once.
 * - Late events from before `acceptFrom(watermark)` (the hour boundary at or before `lateHorizonMs` behind the
 *   watermark) are dropped (`late-dropped`, to be counted): that bounds the history kept per space and device,
 *   and keeps every row the reducer may still emit exact.
 * - Cost: a change recomputes the rows of its site from its bucket to the watermark (then emits only the rows
 *   that differ), so a very late event on a large site is the expensive case.
 */
export type BucketSize = '5m' | '1h';
export const bucketMs: Record<BucketSize, number> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };
const sizes: BucketSize[] = ['5m', '1h'];

export interface RollupPolicy {
  lateHorizonMs: number;
}
export const defaultRollupPolicy: Readonly<RollupPolicy> = Object.freeze({ lateHorizonMs: 24 * 60 * 60_000 });

export interface Change {
  eventId: string;
  at: number;
  occupied: boolean;
}

export interface HealthAccumulator {
  eventIds: string[];
  uplinks: number;
  lastSeen: number;
  battery: { at: number; volts: number } | null;
  batteryMin: number | null;
  rssi: { min: number; sum: number; n: number } | null;
  snr: { min: number; sum: number; n: number } | null;
}

export interface RollupState {
  tenantId: string;
  siteId: string;
  /** Latest change time or tick seen; null before the first. */
  watermark: number | null;
  /** Per space, changes sorted by time (then eventId). */
  spaces: Record<string, Change[]>;
  /** Per device, per size, per bucket start. */
  health: Record<string, Record<BucketSize, Record<number, HealthAccumulator>>>;
}

export function initialRollupState(tenantId: string, siteId: string): RollupState {
  return { tenantId, siteId, watermark: null, spaces: {}, health: {} };
}

export type RollupEvent =
  | { type: 'occupancy-changed'; eventId: string; spaceId: string; to: 'free' | 'occupied'; at: number }
  | {
      type: 'uplink';
      eventId: string;
      devEui: string;
      at: number;
      batteryVolts: number | null;
      rssi: number | null;
      snr: number | null;
    }
  | { type: 'tick'; now: number };

export interface OccupancyRow {
  occupiedMs: number;
  observedMs: number;
  occupancyRate: number | null;
  dwellMeanMs: number | null;
  dwellMedianMs: number | null;
  /** Occupied periods that ended in the bucket (the dwell sample size). */
  periodsEnded: number;
  turnover: number;
}

export interface HealthRow {
  uplinks: number;
  lastSeen: number;
  batteryVolts: number | null;
  batteryMinVolts: number | null;
  rssiMin: number | null;
  rssiAvg: number | null;
  snrMin: number | null;
  snrAvg: number | null;
}

interface Key {
  tenantId: string;
  size: BucketSize;
  bucketStart: number;
}
export type RollupEffect =
  | (Key & { type: 'upsert-space-occupancy'; spaceId: string; row: OccupancyRow })
  | (Key & { type: 'upsert-site-occupancy'; siteId: string; row: OccupancyRow })
  | (Key & { type: 'upsert-device-health'; devEui: string; row: HealthRow })
  | { type: 'late-dropped'; tenantId: string; eventId: string; at: number };

export function bucketStartOf(time: number, size: BucketSize): number {
  return Math.floor(time / bucketMs[size]) * bucketMs[size];
}

/** Occupied periods [start, end) of a change list; the last may be open (end null). */
export function occupiedPeriods(changes: readonly Change[]): Array<{ start: number; end: number | null }> {
  const periods: Array<{ start: number; end: number | null }> = [];
  let open: number | null = null;
  for (const c of changes) {
    if (c.occupied && open === null) open = c.at;
    else if (!c.occupied && open !== null) {
      periods.push({ start: open, end: c.at });
      open = null;
    }
  }
  if (open !== null) periods.push({ start: open, end: null });
  return periods;
}

function spaceTotals(changes: readonly Change[], start: number, end: number, watermark: number) {
  let occupiedMs = 0;
  let observedMs = 0;
  changes.forEach((c, i) => {
    const until = Math.min(changes[i + 1]?.at ?? watermark, watermark);
    const overlap = Math.max(0, Math.min(until, end) - Math.max(c.at, start));
    observedMs += overlap;
    if (c.occupied) occupiedMs += overlap;
  });
  const periods = occupiedPeriods(changes);
  const durations = periods.flatMap((p) =>
    p.end !== null && p.end >= start && p.end < end ? [p.end - p.start] : [],
  );
  const turnover = periods.filter((p) => p.start >= start && p.start < end).length;
  return { occupiedMs, observedMs, durations, turnover };
}

function row(totals: {
  occupiedMs: number;
  observedMs: number;
  durations: number[];
  turnover: number;
}): OccupancyRow {
  const sorted = [...totals.durations].sort((a, b) => a - b);
  const n = sorted.length;
  const median =
    n === 0 ? null : n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return {
    occupiedMs: totals.occupiedMs,
    observedMs: totals.observedMs,
    occupancyRate: totals.observedMs === 0 ? null : totals.occupiedMs / totals.observedMs,
    dwellMeanMs: n === 0 ? null : sorted.reduce((a, b) => a + b, 0) / n,
    dwellMedianMs: median,
    periodsEnded: n,
    turnover: totals.turnover,
  };
}

/** Every closed bucket's rows between `from` and the watermark, keyed for comparison. */
function occupancyRows(state: RollupState, from: number): Map<string, RollupEffect> {
  const rows = new Map<string, RollupEffect>();
  const w = state.watermark;
  if (w === null) return rows;
  const spaceIds = Object.keys(state.spaces).sort();
  for (const size of sizes) {
    const len = bucketMs[size];
    for (let b = bucketStartOf(from, size); b + len <= w; b += len) {
      const site = { occupiedMs: 0, observedMs: 0, durations: [] as number[], turnover: 0 };
      for (const spaceId of spaceIds) {
        const totals = spaceTotals(state.spaces[spaceId] ?? [], b, b + len, w);
        if (totals.observedMs === 0 && totals.durations.length === 0 && totals.turnover === 0) continue;
        rows.set(`space/${spaceId}/${size}/${b}`, {
          type: 'upsert-space-occupancy',
          tenantId: state.tenantId,
          spaceId,
          size,
          bucketStart: b,
          row: row(totals),
        });
        site.occupiedMs += totals.occupiedMs;
        site.observedMs += totals.observedMs;
        site.durations.push(...totals.durations);
        site.turnover += totals.turnover;
      }
      if (site.observedMs > 0 || site.durations.length > 0)
        rows.set(`site/${size}/${b}`, {
          type: 'upsert-site-occupancy',
          tenantId: state.tenantId,
          siteId: state.siteId,
          size,
          bucketStart: b,
          row: row(site),
        });
    }
  }
  return rows;
}

function changedRows(before: RollupState, after: RollupState, from: number): RollupEffect[] {
  const old = occupancyRows(before, from);
  const effects: RollupEffect[] = [];
  for (const [key, effect] of occupancyRows(after, from)) {
    const previous = old.get(key);
    if (!previous || JSON.stringify(previous) !== JSON.stringify(effect)) effects.push(effect);
  }
  return effects;
}

export function reduceRollups(
  state: RollupState,
  event: RollupEvent,
  policy: RollupPolicy = defaultRollupPolicy,
): { state: RollupState; effects: RollupEffect[] } {
  if (event.type === 'uplink') return onUplink(state, event, policy);
  const at = event.type === 'tick' ? event.now : event.at;
  if (state.watermark !== null && at < acceptFrom(state.watermark, policy))
    return {
      state,
      effects:
        event.type === 'tick'
          ? []
          : [{ type: 'late-dropped', tenantId: state.tenantId, eventId: event.eventId, at }],
    };
  const watermark = Math.max(state.watermark ?? at, at);
  let next: RollupState = { ...state, watermark };
  if (event.type === 'occupancy-changed') {
    const changes = state.spaces[event.spaceId] ?? [];
    if (changes.some((c) => c.eventId === event.eventId)) return { state, effects: [] };
    const inserted = [...changes, { eventId: event.eventId, at, occupied: event.to === 'occupied' }].sort(
      (a, b) => a.at - b.at || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0),
    );
    next = { ...next, spaces: { ...next.spaces, [event.spaceId]: inserted } };
  }
  const from = Math.min(at, state.watermark ?? at);
  const effects = changedRows(state, next, from);
  return { state: prune(next, policy), effects };
}

/**
 * Events before this time are too late. It is an hour boundary, so every bucket (5-minute or hourly) that
 * starts at or after it is still exact from the kept history.
 */
export function acceptFrom(watermark: number, policy: RollupPolicy): number {
  return bucketStartOf(watermark - policy.lateHorizonMs, '1h');
}

/**
 * Keeps the changes from `acceptFrom` on, plus the run of equal-valued changes in effect at that time (its first
 * change dates the occupied period that may end inside the horizon).
 */
function prune(state: RollupState, policy: RollupPolicy): RollupState {
  if (state.watermark === null) return state;
  const keepFrom = acceptFrom(state.watermark, policy);
  const spaces: Record<string, Change[]> = {};
  for (const [spaceId, changes] of Object.entries(state.spaces)) {
    let first = changes.findIndex((c) => c.at >= keepFrom);
    if (first === -1) first = changes.length;
    if (first > 0) first -= 1;
    while (first > 0 && changes[first - 1]!.occupied === changes[first]!.occupied) first -= 1;
    spaces[spaceId] = changes.slice(first);
  }
  const health: RollupState['health'] = {};
  for (const [devEui, bySize] of Object.entries(state.health)) {
    const recent = <T>(buckets: Record<number, T>) =>
      Object.fromEntries(Object.entries(buckets).filter(([start]) => Number(start) >= keepFrom));
    health[devEui] = { '5m': recent(bySize['5m']), '1h': recent(bySize['1h']) };
  }
  return { ...state, spaces, health };
}

function onUplink(
  state: RollupState,
  event: Extract<RollupEvent, { type: 'uplink' }>,
  policy: RollupPolicy,
): { state: RollupState; effects: RollupEffect[] } {
  if (state.watermark !== null && event.at < acceptFrom(state.watermark, policy))
    return {
      state,
      effects: [{ type: 'late-dropped', tenantId: state.tenantId, eventId: event.eventId, at: event.at }],
    };
  const device = state.health[event.devEui] ?? { '5m': {}, '1h': {} };
  const effects: RollupEffect[] = [];
  const nextDevice = { ...device };
  for (const size of sizes) {
    const start = bucketStartOf(event.at, size);
    const acc = device[size][start];
    if (acc?.eventIds.includes(event.eventId)) continue;
    const updated = accumulate(acc, event);
    nextDevice[size] = { ...device[size], [start]: updated };
    effects.push({
      type: 'upsert-device-health',
      tenantId: state.tenantId,
      devEui: event.devEui,
      size,
      bucketStart: start,
      row: healthRow(updated),
    });
  }
  return { state: { ...state, health: { ...state.health, [event.devEui]: nextDevice } }, effects };
}

function accumulate(
  acc: HealthAccumulator | undefined,
  u: Extract<RollupEvent, { type: 'uplink' }>,
): HealthAccumulator {
  const stat = (s: { min: number; sum: number; n: number } | null, v: number | null) =>
    v === null
      ? s
      : s === null
        ? { min: v, sum: v, n: 1 }
        : { min: Math.min(s.min, v), sum: s.sum + v, n: s.n + 1 };
  const battery =
    u.batteryVolts === null
      ? (acc?.battery ?? null)
      : !acc?.battery || u.at >= acc.battery.at
        ? { at: u.at, volts: u.batteryVolts }
        : acc.battery;
  return {
    eventIds: [...(acc?.eventIds ?? []), u.eventId],
    uplinks: (acc?.uplinks ?? 0) + 1,
    lastSeen: Math.max(acc?.lastSeen ?? u.at, u.at),
    battery,
    batteryMin:
      u.batteryVolts === null
        ? (acc?.batteryMin ?? null)
        : Math.min(acc?.batteryMin ?? Infinity, u.batteryVolts),
    rssi: stat(acc?.rssi ?? null, u.rssi),
    snr: stat(acc?.snr ?? null, u.snr),
  };
}

function healthRow(acc: HealthAccumulator): HealthRow {
  return {
    uplinks: acc.uplinks,
    lastSeen: acc.lastSeen,
    batteryVolts: acc.battery?.volts ?? null,
    batteryMinVolts: acc.batteryMin,
    rssiMin: acc.rssi?.min ?? null,
    rssiAvg: acc.rssi ? acc.rssi.sum / acc.rssi.n : null,
    snrMin: acc.snr?.min ?? null,
    snrAvg: acc.snr ? acc.snr.sum / acc.snr.n : null,
  };
}
