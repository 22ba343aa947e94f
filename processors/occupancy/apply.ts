import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import {
  defaultOccupancyPolicy,
  initialSpaceState,
  reduceOccupancy,
  type OccupancyEffect,
  type OccupancyPolicy,
  type SpaceState,
} from './reduce.js';

/**
 * Until tenant policies and the pending debounce run are stored (the spaces table has no columns for them yet),
 * apply confirms on the first reading: a pending run kept only in memory would be lost between batches.
 */
const applyPolicy: OccupancyPolicy = { ...defaultOccupancyPolicy, confirmCount: 1 };

/**
 * Applies one batch of uplinks in ONE transaction, as the pipeline role: loads the current state of every
 * space the batch touches (locked, so two consumers cannot interleave on a space), runs the pure reducer over
 * the batch in order, and writes its effects. Writes are idempotent: an uplink is keyed by
 * (tenant_id, event_id, time), and a redelivered frame is stale for the reducer.
 */
export async function applyUplinkBatch(pool: Pool, uplinks: UplinkRecord[]): Promise<{ changes: number }> {
  if (uplinks.length === 0) return { changes: 0 };
  try {
    return await withTransaction(pool, async (client) => {
      const states = await loadSpaceStates(client, uplinks);
      const effects: OccupancyEffect[] = [];
      for (const uplink of uplinks) {
        const key = spaceKey(uplink.tenantId, uplink.spaceId);
        const result = reduceOccupancy(
          states.get(key) ?? initialSpaceState,
          { type: 'uplink', uplink },
          applyPolicy,
        );
        states.set(key, result.state);
        effects.push(...result.effects);
      }
      await insertUplinks(
        client,
        effects.flatMap((e) => (e.type === 'record-uplink' ? [e.uplink] : [])),
      );
      // Only the last state per space matters for the row; change history lands in occupancy_changes later.
      const finalStates = new Map<string, Extract<OccupancyEffect, { type: 'set-space-state' }>>();
      for (const e of effects)
        if (e.type === 'set-space-state') finalStates.set(spaceKey(e.tenantId, e.spaceId), e);
      await updateSpaceStates(client, [...finalStates.values()]);
      return { changes: effects.filter((e) => e.type === 'occupancy-changed').length };
    });
  } catch (error) {
    throw new PlatformError('DB_UNAVAILABLE', 'applying the occupancy batch failed', {
      cause: error,
      retriable: true,
    });
  }
}

function spaceKey(tenantId: string, spaceId: string | null): string {
  return `${tenantId}/${spaceId ?? '-'}`;
}

async function loadSpaceStates(
  client: PoolClient,
  uplinks: UplinkRecord[],
): Promise<Map<string, SpaceState>> {
  const withSpace = uplinks.filter((u) => u.spaceId !== null);
  const states = new Map<string, SpaceState>();
  if (withSpace.length === 0) return states;
  const { rows } = await client.query<{
    tenant_id: string;
    id: string;
    state: SpaceState['state'];
    state_since: Date | null;
    last_event_time: Date | null;
    last_f_cnt: string | null;
  }>(
    `SELECT s.tenant_id, s.id, s.state, s.state_since, s.last_event_time, s.last_f_cnt
       FROM spaces s JOIN unnest($1::uuid[], $2::uuid[]) AS k(tenant_id, id) ON s.tenant_id = k.tenant_id AND s.id = k.id
      ORDER BY s.tenant_id, s.id
        FOR UPDATE OF s`,
    [withSpace.map((u) => u.tenantId), withSpace.map((u) => u.spaceId)],
  );
  for (const row of rows) {
    states.set(spaceKey(row.tenant_id, row.id), {
      ...initialSpaceState,
      state: row.state,
      stateSince: row.state_since?.getTime() ?? null,
      lastEventTime: row.last_event_time?.getTime() ?? null,
      lastFCnt: row.last_f_cnt === null ? null : Number(row.last_f_cnt),
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
  await client.query(
    `UPDATE spaces s
        SET state = u.state, state_since = to_timestamp(u.since / 1000.0), last_event_time = to_timestamp(u.at / 1000.0),
            last_f_cnt = u.fcnt, updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::float8[], $5::float8[], $6::bigint[])
            AS u(tenant_id, id, state, since, at, fcnt)
      WHERE s.tenant_id = u.tenant_id AND s.id = u.id`,
    [
      updates.map((e) => e.tenantId),
      updates.map((e) => e.spaceId),
      updates.map((e) => e.state.state),
      updates.map((e) => e.state.stateSince),
      updates.map((e) => e.state.lastEventTime),
      updates.map((e) => e.state.lastFCnt),
    ],
  );
}

async function insertUplinks(client: PoolClient, uplinks: UplinkRecord[]): Promise<void> {
  if (uplinks.length === 0) return;
  await client.query(
    `INSERT INTO uplinks (tenant_id, time, event_id, dev_eui, space_id, f_cnt, f_port, occupied, battery_volts,
                          temperature_c, rssi, snr, payload, received_at)
     SELECT t, to_timestamp(tm / 1000.0), e, d, s, fc, fp, o, b, tc, r, sn, p, to_timestamp(ra / 1000.0)
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[], $7::int[], $8::bool[],
                   $9::float8[], $10::float8[], $11::int[], $12::float8[], $13::bytea[], $14::float8[])
            AS u(t, tm, e, d, s, fc, fp, o, b, tc, r, sn, p, ra)
     ON CONFLICT DO NOTHING`,
    [
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
  );
}
