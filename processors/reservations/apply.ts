import type { PoolClient } from '../../lib/db/pool.js';
import type { ReservationEventRecord } from '../../schemas/avro/records.js';
import type { OutboxMessage } from '../runtime/outbox.js';
import {
  attendanceDue,
  reduceReservation,
  type DeferredReason,
  type ReservationChange,
  type ReservationEvent,
  type ReservationFacts,
  type ReservationPolicy,
  type ReservationStatus,
} from './reduce.js';

/**
 * The I/O of the reservation lifecycle job, inside the caller's transaction (one per batch), for every tenant or
 * only `tenants` (a shard; tests that move the clock):
 * 1. lock at most `limit` due reservations (unpublished status, end passed, or no-show judgement due — the
 *    reducer's `isDue`, each served by a partial index), skipping rows another transaction holds (the API
 *    cancelling one, another instance's batch). While the lag gate is closed a judgement alone does not select
 *    a row: none could be made (only an arrival recorded, which waits), and a pipeline outage leaves every
 *    started reservation due at once — re-reading them all every tick would load the database as it recovers;
 * 2. read what the reducer needs beside them: the space's active sensor, when the occupancy processor last
 *    applied a frame of it and whether an arrival is pending in its debounce (spaces), and for the judgements
 *    only, since when the space was occupied from the start on (occupancy_changes: the latest change at or before
 *    the start, the first `occupied` change after it up to min(now, end));
 * 3. reduce (with the tick's `pipelineCaughtUp`), write the statuses, attendance and announcements back, and
 *    return the events as outbox rows (Avro, keyed by spaceId, ordered by time) for the caller to write in the
 *    same transaction.
 * Every locked row leaves the due set (announced, expired, no-show or judged) except a judgement deferred for
 * lack of evidence: the caller passes those back as `skip` for the rest of its tick, so they cannot fill every
 * batch and starve the others; the next tick retries them.
 */
export interface ReservationSettings {
  policy: ReservationPolicy;
  topic: string;
  encode(record: ReservationEventRecord): Promise<Buffer>;
}

/** A reservation by key. */
export interface ReservationKey {
  tenantId: string;
  reservationId: string;
}

/** What the tick knows beyond the rows: the lag gate, and the deferred judgements to leave alone until the next. */
export interface TickEvidence {
  pipelineCaughtUp: boolean;
  skip: readonly ReservationKey[];
}

export interface ReservationTick {
  /** Reservations locked and reduced. */
  reservations: number;
  /** Judgements due but deferred for lack of evidence (reduce.ts "Evidence"), with why. */
  deferred: Array<ReservationKey & { reason: DeferredReason }>;
  changes: Array<{ tenantId: string; reservationId: string } & ReservationChange>;
  events: ReservationEvent[];
  outbox: OutboxMessage[];
}

export async function tickReservations(
  client: PoolClient,
  now: number,
  limit: number,
  settings: ReservationSettings,
  evidence: TickEvidence,
  tenants: readonly string[] | null = null,
): Promise<ReservationTick> {
  const { rows } = await client.query<{
    tenant_id: string;
    id: string;
    space_id: string;
    starts_at: Date;
    ends_at: Date;
    status: ReservationStatus;
    announced_status: ReservationStatus | null;
    user_id: string | null;
    created_at: Date;
    cancelled_at: Date | null;
    updated_at: Date;
    attendance_checked_at: Date | null;
  }>(
    `SELECT r.tenant_id, r.id, r.space_id, lower(r.during) AS starts_at, upper(r.during) AS ends_at, r.status,
            r.announced_status, r.user_id, r.created_at, r.cancelled_at, r.updated_at, r.attendance_checked_at
       FROM reservations r
      WHERE (r.announced_status IS DISTINCT FROM r.status
             OR (r.status IN ('pending', 'confirmed') AND upper(r.during) <= to_timestamp($1::float8 / 1000.0))
             OR ($7::bool AND r.status = 'confirmed' AND r.attendance_checked_at IS NULL
                 AND lower(r.during) <= to_timestamp($2::float8 / 1000.0)))
        AND ($4::uuid[] IS NULL OR r.tenant_id = ANY($4::uuid[]))
        AND NOT EXISTS (SELECT 1 FROM unnest($5::uuid[], $6::uuid[]) AS d(t, i)
                         WHERE d.t = r.tenant_id AND d.i = r.id)
      LIMIT $3
        FOR UPDATE OF r SKIP LOCKED`,
    [
      now,
      now - settings.policy.noShowGraceMs,
      limit,
      tenants,
      evidence.skip.map((k) => k.tenantId),
      evidence.skip.map((k) => k.reservationId),
      evidence.pipelineCaughtUp,
    ],
  );
  if (rows.length === 0) return { reservations: 0, deferred: [], changes: [], events: [], outbox: [] };
  const facts: ReservationFacts[] = rows.map((r) => ({
    tenantId: r.tenant_id,
    reservationId: r.id,
    spaceId: r.space_id,
    startsAt: r.starts_at.getTime(),
    endsAt: r.ends_at.getTime(),
    status: r.status,
    announcedStatus: r.announced_status,
    userId: r.user_id,
    createdAt: r.created_at.getTime(),
    cancelledAt: r.cancelled_at?.getTime() ?? null,
    updatedAt: r.updated_at.getTime(),
    attendanceCheckedAt: r.attendance_checked_at?.getTime() ?? null,
    hasSensor: false,
    devEui: null,
    occupiedSince: null,
    sensorHeardAt: null,
    arrivalPending: false,
    pipelineCaughtUp: evidence.pipelineCaughtUp,
  }));
  await readSpaces(client, facts, now, settings.policy);

  const changes: ReservationTick['changes'] = [];
  const deferred: ReservationTick['deferred'] = [];
  // One space's events in the order they happened (the topic is keyed by space): by time, each reservation's
  // chain kept in its order (a chain's key never goes back, whatever the rows' clocks say).
  const keyed: Array<{ e: ReservationEvent; at: number; i: number }> = [];
  for (const r of facts) {
    const result = reduceReservation(r, now, settings.policy);
    if (result.change)
      changes.push({ tenantId: r.tenantId, reservationId: r.reservationId, ...result.change });
    if (result.deferred)
      deferred.push({ tenantId: r.tenantId, reservationId: r.reservationId, reason: result.deferred });
    let at = -Infinity;
    for (const e of result.events) {
      at = Math.max(at, e.time);
      keyed.push({ e, at, i: keyed.length });
    }
  }
  await writeChanges(client, changes);
  const ordered = keyed.sort((a, b) => a.at - b.at || a.i - b.i).map(({ e }) => e);
  const outbox: OutboxMessage[] = [];
  for (const e of ordered)
    outbox.push({
      tenantId: e.tenantId,
      id: e.eventId,
      time: e.time,
      topic: settings.topic,
      key: e.spaceId,
      value: await settings.encode(e),
    });
  return { reservations: rows.length, deferred, changes, events: ordered, outbox };
}

/**
 * Fills `hasSensor`, `devEui`, `sensorHeardAt`, `arrivalPending` and (for the judgements due) `occupiedSince`
 * in place.
 */
async function readSpaces(
  client: PoolClient,
  facts: ReservationFacts[],
  now: number,
  policy: ReservationPolicy,
): Promise<void> {
  const { rows } = await client.query<{
    n: number;
    dev_eui: string | null;
    heard_at: Date | null;
    pending: boolean;
    occupied_since: Date | null;
  }>(
    `SELECT k.n, s.dev_eui, sp.last_event_time AS heard_at, coalesce(sp.pending_occupied, false) AS pending,
            CASE WHEN k.judge AND s.dev_eui IS NOT NULL THEN coalesce(
              (SELECT k.starts FROM (SELECT c.state FROM occupancy_changes c
                                      WHERE c.tenant_id = k.t AND c.space_id = k.sp AND c.time <= k.starts
                                      ORDER BY c.time DESC LIMIT 1) AS l
                WHERE l.state = 'occupied'),
              (SELECT min(c.time) FROM occupancy_changes c
                WHERE c.tenant_id = k.t AND c.space_id = k.sp AND c.state = 'occupied'
                  AND c.time > k.starts AND c.time <= least(k.ends, to_timestamp($7::float8 / 1000.0))))
            END AS occupied_since
       FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[], $6::bool[])
              AS k(n, t, sp, starts, ends, judge)
       LEFT JOIN sensor_devices s
         ON s.tenant_id = k.t AND s.space_id = k.sp AND s.status = 'active' AND s.archived_at IS NULL
       LEFT JOIN spaces sp ON sp.tenant_id = k.t AND sp.id = k.sp`,
    [
      facts.map((_, i) => i),
      facts.map((f) => f.tenantId),
      facts.map((f) => f.spaceId),
      facts.map((f) => new Date(f.startsAt)),
      facts.map((f) => new Date(f.endsAt)),
      facts.map((f) => attendanceDue(f, now, policy)),
      now,
    ],
  );
  for (const row of rows) {
    const f = facts[row.n]!;
    f.hasSensor = row.dev_eui !== null;
    f.devEui = row.dev_eui;
    f.occupiedSince = row.occupied_since?.getTime() ?? null;
    f.sensorHeardAt = row.heard_at?.getTime() ?? null;
    f.arrivalPending = row.pending;
  }
}

async function writeChanges(client: PoolClient, changes: ReservationTick['changes']): Promise<void> {
  if (changes.length === 0) return;
  await client.query(
    `UPDATE reservations r
        SET status = u.status,
            updated_at = coalesce(to_timestamp(u.changed / 1000.0), r.updated_at),
            announced_status = u.announced,
            attendance_checked_at = coalesce(to_timestamp(u.checked / 1000.0), r.attendance_checked_at),
            arrived_at = coalesce(to_timestamp(u.arrived / 1000.0), r.arrived_at)
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::float8[], $5::text[], $6::float8[], $7::float8[])
              AS u(t, i, status, changed, announced, checked, arrived)
      WHERE r.tenant_id = u.t AND r.id = u.i`,
    [
      changes.map((c) => c.tenantId),
      changes.map((c) => c.reservationId),
      changes.map((c) => c.status),
      changes.map((c) => c.statusChangedAt),
      changes.map((c) => c.announcedStatus),
      changes.map((c) => c.attendance?.checkedAt ?? null),
      changes.map((c) => c.attendance?.arrivedAt ?? null),
    ],
  );
}
