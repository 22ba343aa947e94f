import type { PoolClient } from '../../lib/db/pool.js';
import type { OccupancyChangeRecord, UplinkRecord } from '../../schemas/avro/records.js';
import {
  acceptFrom,
  bucketMs,
  bucketStartOf,
  initialRollupState,
  reduceRollups,
  type BucketSize,
  type HealthAccumulator,
  type HealthRow,
  type OccupancyRow,
  type RollupEffect,
  type RollupEvent,
  type RollupPolicy,
  type RollupState,
} from './reduce.js';

/**
 * The I/O of the rollup reducer (processors/rollups/reduce.ts), inside one transaction each (the runtime's for
 * the two consumers, the tick's own). A record is routed to its space's site (spaces.site_id). For occupancy
 * changes and ticks, the site's rollup_states row holds the reducer's state (space changes, watermark) and is its
 * lock, taken in (tenant_id, site_id) order by one upsert statement, so consumers and ticks of several instances
 * serialise per site and cannot deadlock. Device health accumulators live on the health rows instead (see
 * applyRollupUplinks), so uplinks never rewrite a site's state.
 *
 * Writes are upserts keyed by (tenant_id, space_id | site_id | dev_eui, bucket): replaying a record (the runtime's
 * fence makes that rare) or re-emitting a corrected bucket overwrites the row with the same or the corrected
 * values. Records of a space without a site, or without a space, are ignored (counted as `no-site`).
 */
export interface RollupResult {
  rows: number;
  ignored: { noSite: number; lateDropped: number };
}

interface SiteKey {
  tenantId: string;
  siteId: string;
}

const siteKey = (k: SiteKey) => `${k.tenantId}/${k.siteId}`;

/** Occupancy changes in: the site's occupancy rows are recomputed from the change's bucket to the watermark. */
export async function applyRollupChanges(
  client: PoolClient,
  changes: readonly OccupancyChangeRecord[],
  policy: RollupPolicy,
): Promise<RollupResult> {
  const sites = await sitesOf(
    client,
    changes.map((c) => ({ tenantId: c.tenantId, spaceId: c.spaceId })),
  );
  return applyEvents(
    client,
    changes.map((c) => {
      const siteId = sites.get(`${c.tenantId}/${c.spaceId}`);
      const event: RollupEvent = {
        type: 'occupancy-changed',
        eventId: c.eventId,
        spaceId: c.spaceId,
        to: c.state,
        at: c.time,
      };
      return siteId === undefined ? undefined : { key: { tenantId: c.tenantId, siteId }, event };
    }),
    policy,
  );
}

/**
 * Uplinks in: the device's health rows of the uplink's 5-minute and hourly buckets. The accumulators live on the
 * health rows (column `accumulator`), so a batch reads and writes only its own (device, bucket) rows, never the
 * site's state: the site only lends its watermark (read without a lock; it only grows, and a stale one merely
 * accepts an uplink at the horizon's edge) for the late-horizon check. One device's uplinks share a partition,
 * so one consumer writes its rows at a time (the runtime's offset lock fences a rebalance).
 */
export async function applyRollupUplinks(
  client: PoolClient,
  uplinks: readonly UplinkRecord[],
  policy: RollupPolicy,
): Promise<RollupResult> {
  const sites = await sitesOf(
    client,
    uplinks.flatMap((u) => (u.spaceId === null ? [] : [{ tenantId: u.tenantId, spaceId: u.spaceId }])),
  );
  const routed: Array<{ key: SiteKey; event: Extract<RollupEvent, { type: 'uplink' }> }> = [];
  for (const u of uplinks) {
    const siteId = u.spaceId === null ? undefined : sites.get(`${u.tenantId}/${u.spaceId}`);
    if (siteId === undefined) continue;
    routed.push({
      key: { tenantId: u.tenantId, siteId },
      event: {
        type: 'uplink',
        eventId: u.eventId,
        devEui: u.devEui,
        at: u.time,
        batteryVolts: u.batteryVolts,
        rssi: u.rssi,
        snr: u.snr,
      },
    });
  }
  const noSite = uplinks.length - routed.length;
  if (routed.length === 0) return { rows: 0, ignored: { noSite, lateDropped: 0 } };
  const watermarks = await siteWatermarks(
    client,
    routed.map((r) => r.key),
  );
  const { found: accumulators, settled } = await loadAccumulators(
    client,
    routed.map((r) => ({ tenantId: r.key.tenantId, devEui: r.event.devEui, at: r.event.at })),
  );
  // Per site, a state holding only its watermark and the accumulators this batch touches.
  const states = new Map<string, RollupState>();
  const effects: RollupEffect[] = [];
  for (const { key, event } of routed) {
    // A row whose accumulator the tick dropped is final: the late horizon passed it.
    if (settled.has(`${key.tenantId}/${event.devEui}/${bucketStartOf(event.at, '1h')}`)) {
      effects.push({ type: 'late-dropped', tenantId: key.tenantId, eventId: event.eventId, at: event.at });
      continue;
    }
    const k = siteKey(key);
    let state = states.get(k);
    if (!state) {
      state = { ...initialRollupState(key.tenantId, key.siteId), watermark: watermarks.get(k) ?? null };
      states.set(k, state);
    }
    if (!state.health[event.devEui]) {
      const loaded = accumulators.get(`${key.tenantId}/${event.devEui}`);
      state.health[event.devEui] = { '5m': { ...loaded?.['5m'] }, '1h': { ...loaded?.['1h'] } };
    }
    const result = reduceRollups(state, event, policy);
    states.set(k, result.state);
    for (const effect of result.effects) effects.push(effect);
  }
  const latest = new Map<string, Extract<RollupEffect, { type: 'upsert-device-health' }>>();
  let lateDropped = 0;
  for (const e of effects) {
    if (e.type === 'late-dropped') lateDropped++;
    else if (e.type === 'upsert-device-health')
      latest.set(`${e.tenantId}/${e.devEui}/${e.size}/${e.bucketStart}`, e);
  }
  const rows = [...latest.values()];
  const health = new Map(
    [...states.values()].flatMap((state) =>
      Object.entries(state.health).map(
        ([devEui, buckets]) => [`${state.tenantId}/${devEui}`, buckets] as const,
      ),
    ),
  );
  const accumulatorOf = (e: (typeof rows)[number]) =>
    health.get(`${e.tenantId}/${e.devEui}`)![e.size][e.bucketStart]!;
  for (const size of ['5m', '1h'] as const) {
    const ofSize = rows.filter((e) => e.size === size);
    await upsertHealthRows(client, size, ofSize, ofSize.map(accumulatorOf));
  }
  return { rows: rows.length, ignored: { noSite, lateDropped } };
}

/** The watermark of each site's state (absent: the site has no state yet, so nothing is late). */
async function siteWatermarks(client: PoolClient, keys: readonly SiteKey[]): Promise<Map<string, number>> {
  const unique = [...new Map(keys.map((k) => [siteKey(k), k])).values()];
  const { rows } = await client.query<{ tenant_id: string; site_id: string; watermark: number | null }>(
    `SELECT r.tenant_id, r.site_id, (r.state->>'watermark')::float8 AS watermark
       FROM rollup_states r JOIN unnest($1::uuid[], $2::uuid[]) AS k(t, s) ON r.tenant_id = k.t AND r.site_id = k.s`,
    [unique.map((k) => k.tenantId), unique.map((k) => k.siteId)],
  );
  return new Map(
    rows.flatMap((r) =>
      r.watermark === null
        ? []
        : [[siteKey({ tenantId: r.tenant_id, siteId: r.site_id }), r.watermark] as const],
    ),
  );
}

/**
 * The stored accumulators of the buckets these uplinks fall in, per `tenant/devEui`, and the hourly buckets
 * (`tenant/devEui/bucketStart`) whose row exists without one: settled. The tick drops accumulators below an hour
 * boundary, so a 5-minute bucket is settled exactly when its hour is.
 */
async function loadAccumulators(
  client: PoolClient,
  uplinks: ReadonlyArray<{ tenantId: string; devEui: string; at: number }>,
): Promise<{ found: Map<string, RollupState['health'][string]>; settled: Set<string> }> {
  const found = new Map<string, RollupState['health'][string]>();
  const settled = new Set<string>();
  for (const size of ['5m', '1h'] as const) {
    const keys = new Map(
      uplinks.map((u) => {
        const bucket = bucketStartOf(u.at, size);
        return [`${u.tenantId}/${u.devEui}/${bucket}`, { ...u, bucket }] as const;
      }),
    );
    const list = [...keys.values()];
    // Table names come from the constant map below, never from input.
    const { rows } = await client.query<{
      tenant_id: string;
      dev_eui: string;
      bucket_ms: number;
      accumulator: HealthAccumulator | null;
    }>(
      `SELECT h.tenant_id, h.dev_eui, extract(epoch FROM h.bucket) * 1000 AS bucket_ms, h.accumulator
         FROM ${healthTables[size]} h
         JOIN unnest($1::uuid[], $2::text[], $3::float8[]) AS k(t, d, b)
           ON h.tenant_id = k.t AND h.dev_eui = k.d AND h.bucket = to_timestamp(k.b / 1000.0)`,
      [list.map((k) => k.tenantId), list.map((k) => k.devEui), list.map((k) => k.bucket)],
    );
    for (const r of rows) {
      const key = `${r.tenant_id}/${r.dev_eui}`;
      if (r.accumulator === null) {
        if (size === '1h') settled.add(`${key}/${Number(r.bucket_ms)}`);
        continue;
      }
      const device = found.get(key) ?? { '5m': {}, '1h': {} };
      device[size][Number(r.bucket_ms)] = r.accumulator;
      found.set(key, device);
    }
  }
  return { found, settled };
}

/**
 * The tick: sites whose next 5-minute bucket has ended by `now` (wall clock, epoch ms) get a tick event, which
 * closes their buckets up to `now` — or, for a site whose watermark is further behind than the late horizon (the
 * processors were down for days), up to one late horizon past its watermark: the site stays due and the next
 * ticks catch up, so one tick's work stays bounded. At most `maxItems` sites, longest due first; sites locked by
 * a consumer are skipped (next tick). The tick also drops the health accumulators of buckets the late horizon has
 * passed (no uplink can change them any more), a bounded number per tick.
 */
export async function tickRollups(
  client: PoolClient,
  now: number,
  maxItems: number,
  policy: RollupPolicy,
): Promise<RollupResult & { sites: number }> {
  const { rows } = await client.query<{ tenant_id: string; site_id: string; state: RollupState }>(
    `SELECT tenant_id, site_id, state FROM rollup_states
      WHERE next_close_at <= to_timestamp($1 / 1000.0)
      ORDER BY next_close_at, tenant_id, site_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [now, maxItems],
  );
  const states = new Map(rows.map((r) => [siteKey({ tenantId: r.tenant_id, siteId: r.site_id }), r.state]));
  const result = await reduceAndWrite(
    client,
    states,
    rows.map((r) => ({
      key: { tenantId: r.tenant_id, siteId: r.site_id },
      event: { type: 'tick', now: Math.min(now, (r.state.watermark ?? now) + policy.lateHorizonMs) },
    })),
    policy,
  );
  await dropSettledAccumulators(client, acceptFrom(now, policy), maxItems * 100);
  return { ...result, sites: rows.length };
}

/**
 * Sets `accumulator` to NULL on health rows of buckets that start before `before`, at most `limit` rows per table
 * (the next tick continues), found through the partial index of rows still carrying one.
 */
async function dropSettledAccumulators(client: PoolClient, before: number, limit: number): Promise<void> {
  for (const size of ['5m', '1h'] as const) {
    // Table names come from the constant map below, never from input.
    await client.query(
      `UPDATE ${healthTables[size]} h SET accumulator = NULL
         FROM (SELECT tenant_id, dev_eui, bucket FROM ${healthTables[size]}
                WHERE bucket < to_timestamp($1 / 1000.0) AND accumulator IS NOT NULL
                LIMIT $2) old
        WHERE h.tenant_id = old.tenant_id AND h.dev_eui = old.dev_eui AND h.bucket = old.bucket`,
      [before, limit],
    );
  }
}

async function applyEvents(
  client: PoolClient,
  routed: ReadonlyArray<{ key: SiteKey; event: RollupEvent } | undefined>,
  policy: RollupPolicy,
): Promise<RollupResult> {
  const present = routed.filter((r): r is { key: SiteKey; event: RollupEvent } => r !== undefined);
  const noSite = routed.length - present.length;
  if (present.length === 0) return { rows: 0, ignored: { noSite, lateDropped: 0 } };
  const states = await lockStates(
    client,
    present.map((r) => r.key),
  );
  const result = await reduceAndWrite(client, states, present, policy);
  return { rows: result.rows, ignored: { noSite, lateDropped: result.ignored.lateDropped } };
}

async function reduceAndWrite(
  client: PoolClient,
  states: Map<string, RollupState>,
  events: ReadonlyArray<{ key: SiteKey; event: RollupEvent }>,
  policy: RollupPolicy,
): Promise<RollupResult> {
  const effects: RollupEffect[] = [];
  for (const { key, event } of events) {
    const k = siteKey(key);
    const result = reduceRollups(
      states.get(k) ?? initialRollupState(key.tenantId, key.siteId),
      event,
      policy,
    );
    states.set(k, result.state);
    for (const effect of result.effects) effects.push(effect);
  }
  // A later effect for the same row supersedes an earlier one of the same batch.
  const latest = new Map<string, Exclude<RollupEffect, { type: 'late-dropped' }>>();
  let lateDropped = 0;
  for (const e of effects) {
    if (e.type === 'late-dropped') lateDropped++;
    else {
      const id =
        e.type === 'upsert-space-occupancy'
          ? e.spaceId
          : e.type === 'upsert-site-occupancy'
            ? e.siteId
            : e.devEui;
      latest.set(`${e.type}/${e.tenantId}/${id}/${e.size}/${e.bucketStart}`, e);
    }
  }
  const rows = [...latest.values()];
  for (const size of ['5m', '1h'] as const) {
    await upsertSpaceRows(
      client,
      size,
      rows.flatMap((e) => (e.type === 'upsert-space-occupancy' && e.size === size ? [e] : [])),
    );
    await upsertSiteRows(
      client,
      size,
      rows.flatMap((e) => (e.type === 'upsert-site-occupancy' && e.size === size ? [e] : [])),
      states,
    );
  }
  await saveStates(client, states);
  return { rows: rows.length, ignored: { noSite: 0, lateDropped } };
}

async function sitesOf(
  client: PoolClient,
  spaces: ReadonlyArray<{ tenantId: string; spaceId: string }>,
): Promise<Map<string, string>> {
  if (spaces.length === 0) return new Map();
  const { rows } = await client.query<{ tenant_id: string; id: string; site_id: string }>(
    `SELECT s.tenant_id, s.id, s.site_id FROM spaces s
       JOIN unnest($1::uuid[], $2::uuid[]) AS k(t, i) ON s.tenant_id = k.t AND s.id = k.i
      WHERE s.site_id IS NOT NULL`,
    [spaces.map((s) => s.tenantId), spaces.map((s) => s.spaceId)],
  );
  return new Map(rows.map((r) => [`${r.tenant_id}/${r.id}`, r.site_id]));
}

/**
 * Creates missing state rows and locks every row of the batch, in key order, in ONE statement (two statements
 * could lock an inserted row before an existing one and deadlock with another consumer).
 */
async function lockStates(client: PoolClient, keys: readonly SiteKey[]): Promise<Map<string, RollupState>> {
  const unique = [...new Map(keys.map((k) => [siteKey(k), k])).values()];
  const { rows } = await client.query<{ tenant_id: string; site_id: string; state: RollupState }>(
    `INSERT INTO rollup_states (tenant_id, site_id, state)
     SELECT t, s, jsonb_build_object('tenantId', t, 'siteId', s, 'watermark', NULL, 'spaces', '{}'::jsonb,
                                     'health', '{}'::jsonb)
       FROM unnest($1::uuid[], $2::uuid[]) AS k(t, s) ORDER BY t, s
     ON CONFLICT (tenant_id, site_id) DO UPDATE SET updated_at = rollup_states.updated_at
     RETURNING tenant_id, site_id, state`,
    [unique.map((k) => k.tenantId), unique.map((k) => k.siteId)],
  );
  return new Map(rows.map((r) => [siteKey({ tenantId: r.tenant_id, siteId: r.site_id }), r.state]));
}

async function saveStates(client: PoolClient, states: Map<string, RollupState>): Promise<void> {
  const all = [...states.values()];
  if (all.length === 0) return;
  await client.query(
    `UPDATE rollup_states r SET state = u.state, next_close_at = to_timestamp(u.close / 1000.0), updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::float8[]) AS u(t, s, state, close)
      WHERE r.tenant_id = u.t AND r.site_id = u.s`,
    [
      all.map((s) => s.tenantId),
      all.map((s) => s.siteId),
      all.map((s) => JSON.stringify(s)),
      // The end of the 5-minute bucket holding the watermark: the tick closes it once the clock passes it.
      all.map((s) => (s.watermark === null ? null : bucketStartOf(s.watermark, '5m') + bucketMs['5m'])),
    ],
  );
}

const spaceTables: Record<BucketSize, string> = { '5m': 'space_occupancy_5m', '1h': 'space_occupancy_1h' };
const siteTables: Record<BucketSize, string> = { '5m': 'site_occupancy_5m', '1h': 'site_occupancy_1h' };
const healthTables: Record<BucketSize, string> = { '5m': 'device_health_5m', '1h': 'device_health_1h' };

const seconds = (ms: number | null) => (ms === null ? null : ms / 1000);
/** The sum of the dwell durations, exact (they are whole milliseconds). */
const dwellSumSeconds = (row: OccupancyRow) =>
  row.dwellMeanMs === null ? 0 : Math.round(row.dwellMeanMs * row.periodsEnded) / 1000;

async function upsertSpaceRows(
  client: PoolClient,
  size: BucketSize,
  rows: Array<Extract<RollupEffect, { type: 'upsert-space-occupancy' }>>,
): Promise<void> {
  if (rows.length === 0) return;
  // Table names come from the constant map above, never from input.
  await client.query(
    `INSERT INTO ${spaceTables[size]} (tenant_id, bucket, space_id, occupied_seconds, occupancy_rate, arrivals,
                                       dwell_seconds_sum, dwell_count, observed_seconds, dwell_median_seconds)
     SELECT t, to_timestamp(b / 1000.0), s, os, r, a, ds, dc, obs, dm
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::float8[], $5::float8[], $6::int[], $7::float8[],
                   $8::int[], $9::float8[], $10::float8[]) AS u(t, b, s, os, r, a, ds, dc, obs, dm)
     ON CONFLICT (tenant_id, space_id, bucket) DO UPDATE SET
       occupied_seconds = EXCLUDED.occupied_seconds, occupancy_rate = EXCLUDED.occupancy_rate,
       arrivals = EXCLUDED.arrivals, dwell_seconds_sum = EXCLUDED.dwell_seconds_sum,
       dwell_count = EXCLUDED.dwell_count, observed_seconds = EXCLUDED.observed_seconds,
       dwell_median_seconds = EXCLUDED.dwell_median_seconds`,
    [
      rows.map((e) => e.tenantId),
      rows.map((e) => e.bucketStart),
      rows.map((e) => e.spaceId),
      rows.map((e) => e.row.occupiedMs / 1000),
      rows.map((e) => e.row.occupancyRate ?? 0),
      rows.map((e) => e.row.turnover),
      rows.map((e) => dwellSumSeconds(e.row)),
      rows.map((e) => e.row.periodsEnded),
      rows.map((e) => e.row.observedMs / 1000),
      rows.map((e) => seconds(e.row.dwellMedianMs)),
    ],
  );
}

async function upsertSiteRows(
  client: PoolClient,
  size: BucketSize,
  rows: Array<Extract<RollupEffect, { type: 'upsert-site-occupancy' }>>,
  states: Map<string, RollupState>,
): Promise<void> {
  if (rows.length === 0) return;
  // Spaces reported on before the bucket's end (the spaces the site row sums).
  const spacesIn = (e: (typeof rows)[number]) => {
    const state = states.get(siteKey(e));
    const end = e.bucketStart + bucketMs[size];
    return Object.values(state?.spaces ?? {}).filter((changes) => (changes[0]?.at ?? end) < end).length;
  };
  await client.query(
    `INSERT INTO ${siteTables[size]} (tenant_id, bucket, site_id, spaces, occupancy_rate, arrivals,
                                      dwell_seconds_sum, dwell_count, occupied_seconds, observed_seconds,
                                      dwell_median_seconds)
     SELECT t, to_timestamp(b / 1000.0), s, n, r, a, ds, dc, os, obs, dm
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::int[], $5::float8[], $6::int[], $7::float8[],
                   $8::int[], $9::float8[], $10::float8[], $11::float8[]) AS u(t, b, s, n, r, a, ds, dc, os, obs, dm)
     ON CONFLICT (tenant_id, site_id, bucket) DO UPDATE SET
       spaces = EXCLUDED.spaces, occupancy_rate = EXCLUDED.occupancy_rate, arrivals = EXCLUDED.arrivals,
       dwell_seconds_sum = EXCLUDED.dwell_seconds_sum, dwell_count = EXCLUDED.dwell_count,
       occupied_seconds = EXCLUDED.occupied_seconds, observed_seconds = EXCLUDED.observed_seconds,
       dwell_median_seconds = EXCLUDED.dwell_median_seconds`,
    [
      rows.map((e) => e.tenantId),
      rows.map((e) => e.bucketStart),
      rows.map((e) => e.siteId),
      rows.map(spacesIn),
      rows.map((e) => e.row.occupancyRate ?? 0),
      rows.map((e) => e.row.turnover),
      rows.map((e) => dwellSumSeconds(e.row)),
      rows.map((e) => e.row.periodsEnded),
      rows.map((e) => e.row.occupiedMs / 1000),
      rows.map((e) => e.row.observedMs / 1000),
      rows.map((e) => seconds(e.row.dwellMedianMs)),
    ],
  );
}

async function upsertHealthRows(
  client: PoolClient,
  size: BucketSize,
  rows: Array<Extract<RollupEffect, { type: 'upsert-device-health' }>>,
  accumulators: HealthAccumulator[],
): Promise<void> {
  if (rows.length === 0) return;
  const col = (f: (r: HealthRow) => number | null) => rows.map((e) => f(e.row));
  await client.query(
    `INSERT INTO ${healthTables[size]} (tenant_id, bucket, dev_eui, uplinks, last_seen_at, battery_volts,
                                        min_battery_volts, min_rssi, mean_rssi, min_snr, mean_snr, accumulator)
     SELECT t, to_timestamp(b / 1000.0), d, n, to_timestamp(ls / 1000.0), bv, bmin, rmin, ravg, smin, savg, acc
       FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::int[], $5::float8[], $6::float8[], $7::float8[],
                   $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::jsonb[])
            AS u(t, b, d, n, ls, bv, bmin, rmin, ravg, smin, savg, acc)
     ON CONFLICT (tenant_id, dev_eui, bucket) DO UPDATE SET
       uplinks = EXCLUDED.uplinks, last_seen_at = EXCLUDED.last_seen_at, battery_volts = EXCLUDED.battery_volts,
       min_battery_volts = EXCLUDED.min_battery_volts, min_rssi = EXCLUDED.min_rssi,
       mean_rssi = EXCLUDED.mean_rssi, min_snr = EXCLUDED.min_snr, mean_snr = EXCLUDED.mean_snr,
       accumulator = EXCLUDED.accumulator`,
    [
      rows.map((e) => e.tenantId),
      rows.map((e) => e.bucketStart),
      rows.map((e) => e.devEui),
      col((r) => r.uplinks),
      col((r) => r.lastSeen),
      col((r) => r.batteryVolts),
      col((r) => r.batteryMinVolts),
      col((r) => r.rssiMin),
      col((r) => r.rssiAvg),
      col((r) => r.snrMin),
      col((r) => r.snrAvg),
      accumulators.map((a) => JSON.stringify(a)),
    ],
  );
}
