import type { PoolClient } from '../../lib/db/pool.js';
import type { OccupancyChangeRecord, UplinkRecord } from '../../schemas/avro/records.js';
import type { OutboxMessage } from '../runtime/outbox.js';
import {
  defaultOccupancyPolicy,
  initialSpaceState,
  reduceOccupancy,
  type OccupancyChange,
  type OccupancyEffect,
  type OccupancyPolicy,
  type SpaceState,
} from './reduce.js';

export interface OccupancyApplyDeps {
  /** Topic of the occupancy-change events (parking.occupancy-changes.v1). */
  changesTopic: string;
  encode(record: OccupancyChangeRecord): Promise<Buffer>;
}

/**
 * Applies a batch of uplinks inside the runtime's transaction (processors/runtime/processor.ts), as the pipeline
 * role: loads each tenant's active policy and the whole reducer state of every space the batch touches (rows
 * locked in key order, so two consumers cannot interleave on a space and cannot deadlock), runs the pure reducer
 * over the batch in order, and writes its effects — raw uplinks (idempotent on (tenant_id, event_id, time)), the
 * final state of each space (pending debounce run and stale flag included), the confirmed changes to
 * occupancy_changes, and returns the change events for the outbox (keyed by spaceId, stable ids).
 * Every statement is set-based (one per kind per batch) and named: PostgreSQL parses it once per connection and
 * then reuses a generic plan instead of planning each batch's statements again.
 */
export async function applyOccupancy(
  client: PoolClient,
  uplinks: readonly UplinkRecord[],
  deps: OccupancyApplyDeps,
): Promise<{ outbox: OutboxMessage[]; changes: OccupancyChangeRecord[] }> {
  if (uplinks.length === 0) return { outbox: [], changes: [] };
  const policies = await loadPolicies(client, uplinks);
  const states = await loadSpaceStates(client, uplinks);
  const effects: OccupancyEffect[] = [];
  const changes: OccupancyChangeRecord[] = [];
  for (const uplink of uplinks) {
    const key = spaceKey(uplink.tenantId, uplink.spaceId);
    const before = states.get(key) ?? initialSpaceState;
    const result = reduceOccupancy(
      before,
      { type: 'uplink', uplink },
      policies.get(uplink.tenantId) ?? defaultOccupancyPolicy,
    );
    states.set(key, result.state);
    for (const effect of result.effects) {
      effects.push(effect);
      if (effect.type === 'occupancy-changed') changes.push(toRecord(effect, before, uplink.eventId));
    }
  }
  await insertUplinks(
    client,
    effects.flatMap((e) => (e.type === 'record-uplink' ? [e.uplink] : [])),
  );
  // Only the last state per space matters for the row; the history is occupancy_changes.
  const finalStates = new Map<string, Extract<OccupancyEffect, { type: 'set-space-state' }>>();
  for (const e of effects)
    if (e.type === 'set-space-state') finalStates.set(spaceKey(e.tenantId, e.spaceId), e);
  await updateSpaceStates(client, [...finalStates.values()]);
  await insertChanges(client, changes);
  const outbox: OutboxMessage[] = [];
  for (const change of changes)
    outbox.push({
      tenantId: change.tenantId,
      id: change.eventId,
      time: change.confirmedAt,
      topic: deps.changesTopic,
      key: change.spaceId,
      value: await deps.encode(change),
    });
  return { outbox, changes };
}

function toRecord(change: OccupancyChange, before: SpaceState, uplinkEventId: string): OccupancyChangeRecord {
  return {
    eventId: change.eventId,
    tenantId: change.tenantId,
    devEui: change.devEui,
    spaceId: change.spaceId,
    time: change.at,
    confirmedAt: change.confirmedAt,
    state: change.to,
    previousState: change.from,
    previousDurationMs:
      before.stateSince === null || before.state === 'unknown' ? null : change.at - before.stateSince,
    uplinkEventId,
  };
}

function spaceKey(tenantId: string, spaceId: string | null): string {
  return `${tenantId}/${spaceId ?? '-'}`;
}

async function loadPolicies(
  client: PoolClient,
  uplinks: readonly UplinkRecord[],
): Promise<Map<string, OccupancyPolicy>> {
  const tenants = [...new Set(uplinks.map((u) => u.tenantId))];
  const { rows } = await client.query<{
    tenant_id: string;
    confirm_count: number;
    confirm_window_ms: number;
    stale_after_ms: string;
    duplicate_window_ms: number;
  }>({
    name: 'occupancy-load-policies',
    text: `SELECT tenant_id, confirm_count, confirm_window_ms, stale_after_ms, duplicate_window_ms
       FROM occupancy_policies WHERE tenant_id = ANY($1::uuid[]) AND is_active`,
    values: [tenants],
  });
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      {
        confirmCount: r.confirm_count,
        confirmWindowMs: r.confirm_window_ms,
        staleAfterMs: Number(r.stale_after_ms),
        duplicateWindowMs: r.duplicate_window_ms,
      },
    ]),
  );
}

async function loadSpaceStates(
  client: PoolClient,
  uplinks: readonly UplinkRecord[],
): Promise<Map<string, SpaceState>> {
  const keys = new Map<string, { tenantId: string; spaceId: string }>();
  for (const u of uplinks)
    if (u.spaceId !== null)
      keys.set(spaceKey(u.tenantId, u.spaceId), { tenantId: u.tenantId, spaceId: u.spaceId });
  const states = new Map<string, SpaceState>();
  if (keys.size === 0) return states;
  const { rows } = await client.query<{
    tenant_id: string;
    id: string;
    state: SpaceState['state'];
    state_since: Date | null;
    last_event_time: Date | null;
    last_f_cnt: string | null;
    last_dev_eui: string | null;
    stale: boolean;
    pending_occupied: boolean | null;
    pending_times: string[] | null;
  }>({
    name: 'occupancy-load-spaces',
    text: `SELECT s.tenant_id, s.id, s.state, s.state_since, s.last_event_time, s.last_f_cnt, s.last_dev_eui, s.stale,
            s.pending_occupied, s.pending_times
       FROM spaces s JOIN unnest($1::uuid[], $2::uuid[]) AS k(tenant_id, id) ON s.tenant_id = k.tenant_id AND s.id = k.id
      ORDER BY s.tenant_id, s.id
        FOR UPDATE OF s`,
    values: [[...keys.values()].map((k) => k.tenantId), [...keys.values()].map((k) => k.spaceId)],
  });
  for (const row of rows) {
    // Spaces states the processor does not own (reserved, maintenance) are the display machine's business.
    const state = row.state === 'free' || row.state === 'occupied' ? row.state : 'unknown';
    states.set(spaceKey(row.tenant_id, row.id), {
      state,
      stateSince: row.state_since?.getTime() ?? null,
      stale: row.stale,
      lastEventTime: row.last_event_time?.getTime() ?? null,
      lastFCnt: row.last_f_cnt === null ? null : Number(row.last_f_cnt),
      lastDevEui: row.last_dev_eui,
      pending:
        row.pending_occupied === null || row.pending_times === null
          ? null
          : { occupied: row.pending_occupied, times: row.pending_times.map(Number) },
    });
  }
  return states;
}

/** One statement for the whole batch: a round trip per space would cap the processor at a few hundred/s. */
async function updateSpaceStates(
  client: PoolClient,
  updates: Array<Extract<OccupancyEffect, { type: 'set-space-state' }>>,
): Promise<void> {
  if (updates.length === 0) return;
  await client.query({
    name: 'occupancy-update-spaces',
    text: `UPDATE spaces s
        SET state = u.state, state_since = to_timestamp(u.since / 1000.0),
            last_event_time = to_timestamp(u.at / 1000.0), last_f_cnt = u.fcnt, last_dev_eui = u.dev,
            stale = u.stale, pending_occupied = u.po,
            pending_times = CASE WHEN u.po IS NULL THEN NULL ELSE string_to_array(u.pt, ',')::bigint[] END,
            updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::float8[], $5::float8[], $6::bigint[], $7::text[],
                   $8::bool[], $9::bool[], $10::text[])
            AS u(tenant_id, id, state, since, at, fcnt, dev, stale, po, pt)
      WHERE s.tenant_id = u.tenant_id AND s.id = u.id`,
    values: [
      updates.map((e) => e.tenantId),
      updates.map((e) => e.spaceId),
      updates.map((e) => e.state.state),
      updates.map((e) => e.state.stateSince),
      updates.map((e) => e.state.lastEventTime),
      updates.map((e) => e.state.lastFCnt),
      updates.map((e) => e.state.lastDevEui),
      updates.map((e) => e.state.stale),
      updates.map((e) => e.state.pending?.occupied ?? null),
      // A bigint[] per row does not fit a 1-D unnest parameter: the run travels as a comma-separated list.
      updates.map((e) => e.state.pending?.times.join(',') ?? null),
    ],
  });
}

async function insertChanges(client: PoolClient, changes: readonly OccupancyChangeRecord[]): Promise<void> {
  if (changes.length === 0) return;
  await client.query({
    name: 'occupancy-insert-changes',
    text: `INSERT INTO occupancy_changes (tenant_id, time, event_id, space_id, dev_eui, state, previous_state,
                                    previous_duration_s)
     SELECT t, to_timestamp(tm / 1000.0), e, s, d, st, ps, pd
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::float8[])
            AS c(t, tm, e, s, d, st, ps, pd)
     ON CONFLICT DO NOTHING`,
    values: [
      changes.map((c) => c.tenantId),
      changes.map((c) => c.time),
      changes.map((c) => c.eventId),
      changes.map((c) => c.spaceId),
      changes.map((c) => c.devEui),
      changes.map((c) => c.state),
      changes.map((c) => c.previousState),
      changes.map((c) => (c.previousDurationMs === null ? null : c.previousDurationMs / 1000)),
    ],
  });
}

async function insertUplinks(client: PoolClient, uplinks: UplinkRecord[]): Promise<void> {
  if (uplinks.length === 0) return;
  await client.query({
    name: 'occupancy-insert-uplinks',
    text: `INSERT INTO uplinks (tenant_id, time, event_id, dev_eui, space_id, f_cnt, f_port, occupied, battery_volts,
                          temperature_c, rssi, snr, payload, received_at)
     SELECT t, to_timestamp(tm / 1000.0), e, d, s, fc, fp, o, b, tc, r, sn, p, to_timestamp(ra / 1000.0)
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[], $7::int[], $8::bool[],
                   $9::float8[], $10::float8[], $11::int[], $12::float8[], $13::bytea[], $14::float8[])
            AS u(t, tm, e, d, s, fc, fp, o, b, tc, r, sn, p, ra)
     ON CONFLICT DO NOTHING`,
    values: [
      uplinks.map((u) => u.tenantId),
      uplinks.map((u) => u.time),
      uplinks.map((u) => u.eventId),
      uplinks.map((u) => u.devEui),
      uplinks.map((u) => u.spaceId),
      uplinks.map((u) => u.fCnt),
      uplinks.map((u) => u.fPort),
      uplinks.map((u) => u.occupied),
      uplinks.map((u) => u.batteryVolts),
      uplinks.map((u) => u.temperatureC),
      uplinks.map((u) => u.rssi),
      uplinks.map((u) => u.snr),
      uplinks.map((u) => u.payload),
      uplinks.map((u) => u.receivedAt),
    ],
  });
}
