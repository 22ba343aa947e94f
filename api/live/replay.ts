import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import {
  fromLivenessAlertRow,
  fromOccupancyRow,
  replayableKinds,
  type LiveEvent,
  type LiveEventKind,
  type LivenessAlertRow,
  type OccupancyChangeRow,
  type ReadyMessage,
} from './envelope.js';

/** Where a reconnecting client left off: the last (replayable) event id it saw, or a time (events after it). */
export type ResumeRequest = { lastEventId: string } | { since: Date };

export interface ReplayLimits {
  /** More missed events than this: no replay, the client is told to resync. */
  maxEvents: number;
  /** Only a cursor newer than this (ms before now) is replayed from; an older one means resync. */
  windowMs: number;
  /**
   * Also replayed: the events positioned before the cursor that were recorded at most this long (ms) before it,
   * which the client may not have received (see replayEvents). 0: none.
   */
  lookbackMs: number;
}

export interface ReplayResult {
  events: LiveEvent[];
  resume: ReadyMessage['resume'];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads `lastEventId` / `since` from the connect URL; neither: a fresh subscription. Bad values: 400. */
export function parseResume(params: URLSearchParams): ResumeRequest | null {
  const lastEventId = params.get('lastEventId');
  const since = params.get('since');
  if (lastEventId !== null) {
    if (!uuid.test(lastEventId)) throw new PlatformError('VALIDATION_FAILED', 'lastEventId must be a UUID');
    return { lastEventId: lastEventId.toLowerCase() };
  }
  if (since !== null) {
    const time = new Date(since);
    if (Number.isNaN(time.getTime()))
      throw new PlatformError('VALIDATION_FAILED', 'since must be an ISO 8601 time');
    return { since: time };
  }
  return null;
}

/**
 * A replayed event with the position it is ordered by: `live_event_seq`, taken when its row was written (insert
 * order across transactions, not commit order).
 */
interface Positioned {
  seq: bigint;
  event: LiveEvent;
}

/**
 * The cursor event's position, and the start of its lookback: when the position was taken (`recorded_at`,
 * schemas/sql 1734500000000) less lookbackMs, as PostgreSQL's text (µs; a Date would round to ms).
 */
interface Cursor {
  seq: bigint;
  lookbackFrom: string;
}

type SeqRow<R> = R & { seq: string };

const alertKinds = (kinds: ReadonlySet<LiveEventKind>) => [
  ...(kinds.has('device.alert') ? ['device'] : []),
  ...(kinds.has('gateway.alert') ? ['gateway'] : []),
];

/**
 * The events of `kinds` a client missed, in one transaction already scoped to the tenant (withTenant, or
 * withPlatformAdmin — hence the explicit tenant filter on every query). Only the replayable kinds are read
 * (envelope.ts `replayableKinds`: occupancy changes and liveness alerts); the others are live only.
 *
 * `lastEventId`: the cursor is the position (`live_event_seq`; schemas/sql 1733800000000) of the event with that
 * id, of any replayable kind and whether or not this connection receives that kind; it must be the tenant's and
 * within the window, else resync (`cursor-unknown`: another tenant's id gets the same answer as an unknown one).
 * Replayed, in position order: every event of `kinds` positioned after the cursor, whatever its time (a change
 * recorded later with an earlier time included), and — the lookback — every one positioned before it that was
 * recorded at most `lookbackMs` before the cursor event. A position is taken at INSERT, not at commit, and the
 * client receives different partitions' records out of position order, so the last id it received does not mean
 * it has everything before: an event positioned just before it may have been delivered later, or committed
 * later. The lookback re-sends those; it also re-sends ones the client did get, which it drops by id. Still
 * missed: an event positioned before the cursor and recorded more than `lookbackMs` before it that had not reached
 * the client (a writing transaction open that long, or a live path lagging that much).
 * `since`: the events that happened after that time, in (time, id) order.
 *
 * At most `maxEvents` in all, the lookback included (each query reads one more, to tell "exactly the bound" from
 * "more"). Each query is an index range scan, so a resume costs its result, not the tenant's history: after the
 * cursor on (tenant, position); the lookback on (tenant, recorded) from the lookback's start, ordered by
 * recording time, where the rows it passes over are those positioned after the cursor — fewer than the bound,
 * since the lookback runs only when the events after the cursor fit in it.
 */
export async function replayEvents(
  db: PoolClient,
  tenantId: string,
  request: ResumeRequest,
  kinds: ReadonlySet<LiveEventKind>,
  limits: ReplayLimits,
  now = Date.now(),
): Promise<ReplayResult> {
  const windowStart = new Date(now - limits.windowMs);
  if ('since' in request && request.since < windowStart)
    return { events: [], resume: { status: 'resync', reason: 'too-old' } };
  const wanted = new Set([...kinds].filter((k) => replayableKinds.has(k)));
  const limit = limits.maxEvents + 1;
  let events: LiveEvent[];
  if ('lastEventId' in request) {
    const cursor = await cursorOf(db, tenantId, request.lastEventId, windowStart, limits.lookbackMs);
    if (cursor === null) return { events: [], resume: { status: 'resync', reason: 'cursor-unknown' } };
    const found: Positioned[] = [];
    const entities = alertKinds(wanted);
    if (wanted.has('occupancy.changed'))
      found.push(...(await occupancyAfter(db, tenantId, cursor.seq, limit)));
    if (entities.length > 0) found.push(...(await alertsAfter(db, tenantId, cursor.seq, entities, limit)));
    if (found.length < limit && limits.lookbackMs > 0) {
      const room = limit - found.length;
      if (wanted.has('occupancy.changed')) found.push(...(await occupancyBefore(db, tenantId, cursor, room)));
      if (entities.length > 0) found.push(...(await alertsBefore(db, tenantId, cursor, entities, room)));
    }
    found.sort((x, y) => (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0));
    events = found.slice(0, limit).map((p) => p.event);
  } else {
    events = [];
    if (wanted.has('occupancy.changed'))
      events.push(...(await occupancySince(db, tenantId, request.since, limit)));
    const entities = alertKinds(wanted);
    if (entities.length > 0)
      events.push(...(await alertsSince(db, tenantId, request.since, entities, limit)));
    events.sort((x, y) => x.time.localeCompare(y.time) || x.id.localeCompare(y.id));
    events = events.slice(0, limit);
  }
  if (events.length > limits.maxEvents)
    return { events: [], resume: { status: 'resync', reason: 'too-many' } };
  return { events, resume: { status: 'replayed', count: events.length } };
}

/**
 * The position of a replayable event by its id and the start of its lookback, if it is the tenant's, positioned
 * and within the window.
 */
async function cursorOf(
  db: PoolClient,
  tenantId: string,
  id: string,
  windowStart: Date,
  lookbackMs: number,
): Promise<Cursor | null> {
  const { rows } = await db.query<{ seq: string; lookback_from: string }>(
    `SELECT seq::text, (recorded_at - $4 * interval '1 millisecond')::text AS lookback_from FROM (
       SELECT seq, recorded_at FROM occupancy_changes WHERE tenant_id = $1 AND event_id = $2 AND time >= $3
       UNION ALL
       SELECT raised_seq, raised_recorded_at FROM liveness_alerts
        WHERE tenant_id = $1 AND alert_id = $2 AND raised_at >= $3
       UNION ALL
       SELECT cleared_seq, cleared_recorded_at FROM liveness_alerts
        WHERE tenant_id = $1 AND clear_event_id = $2 AND cleared_at >= $3
     ) c
     WHERE seq IS NOT NULL AND recorded_at IS NOT NULL
     LIMIT 1`,
    [tenantId, id, windowStart, lookbackMs],
  );
  const row = rows[0];
  return row ? { seq: BigInt(row.seq), lookbackFrom: row.lookback_from } : null;
}

const occupancyColumns = `c.tenant_id, c.event_id, c.time, c.space_id, c.dev_eui, c.state, c.previous_state,
  c.previous_duration_s`;
const alertColumns = `a.tenant_id, a.alert_id, a.kind, a.entity_id, a.raised_at, a.raised_last_heard_at,
  a.last_heard_at, a.cleared_at, a.clear_event_id`;

async function occupancyAfter(db: PoolClient, tenantId: string, cursor: bigint, limit: number) {
  const { rows } = await db.query<SeqRow<OccupancyChangeRow>>(
    `SELECT c.seq::text AS seq, ${occupancyColumns}
       FROM occupancy_changes c
      WHERE c.tenant_id = $1 AND c.seq > $2
      ORDER BY c.seq
      LIMIT $3`,
    [tenantId, cursor.toString(), limit],
  );
  return rows.map((row): Positioned => ({ seq: BigInt(row.seq), event: fromOccupancyRow(row) }));
}

/** Raises and clears after the cursor: one alert row can yield both (raised, then cleared, while away). */
async function alertsAfter(
  db: PoolClient,
  tenantId: string,
  cursor: bigint,
  entities: string[],
  limit: number,
): Promise<Positioned[]> {
  const { rows } = await db.query<
    LivenessAlertRow & { raised_seq: string | null; cleared_seq: string | null }
  >(
    `(SELECT a.raised_seq::text AS raised_seq, a.cleared_seq::text AS cleared_seq, ${alertColumns}
        FROM liveness_alerts a
       WHERE a.tenant_id = $1 AND a.raised_seq > $2 AND a.kind = ANY($3::text[])
       ORDER BY a.raised_seq
       LIMIT $4)
     UNION
     (SELECT a.raised_seq::text, a.cleared_seq::text, ${alertColumns}
        FROM liveness_alerts a
       WHERE a.tenant_id = $1 AND a.cleared_seq > $2 AND a.kind = ANY($3::text[])
       ORDER BY a.cleared_seq
       LIMIT $4)`,
    [tenantId, cursor.toString(), entities, limit],
  );
  const found: Positioned[] = [];
  for (const row of rows) {
    if (row.raised_seq !== null && BigInt(row.raised_seq) > cursor) {
      const event = fromLivenessAlertRow(row, 'raised');
      if (event) found.push({ seq: BigInt(row.raised_seq), event });
    }
    if (row.cleared_seq !== null && BigInt(row.cleared_seq) > cursor) {
      const event = fromLivenessAlertRow(row, 'cleared');
      if (event) found.push({ seq: BigInt(row.cleared_seq), event });
    }
  }
  return found;
}

/**
 * The lookback's changes: positioned before the cursor, recorded at or after its lookback start. Read in recording
 * order through occupancy_changes_recorded_at (tenant, recorded_at), which passes over the changes positioned after
 * the cursor (fewer than the bound: replayEvents checked) and stops at `limit`.
 */
async function occupancyBefore(db: PoolClient, tenantId: string, cursor: Cursor, limit: number) {
  const { rows } = await db.query<SeqRow<OccupancyChangeRow>>(
    `SELECT c.seq::text AS seq, ${occupancyColumns}
       FROM occupancy_changes c
      WHERE c.tenant_id = $1 AND c.recorded_at >= $2::timestamptz AND c.seq < $3
      ORDER BY c.recorded_at
      LIMIT $4`,
    [tenantId, cursor.lookbackFrom, cursor.seq.toString(), limit],
  );
  return rows.map((row): Positioned => ({ seq: BigInt(row.seq), event: fromOccupancyRow(row) }));
}

/** The lookback's raises and clears, as occupancyBefore: each by its own position and recording time. */
async function alertsBefore(
  db: PoolClient,
  tenantId: string,
  cursor: Cursor,
  entities: string[],
  limit: number,
): Promise<Positioned[]> {
  // raise_in / clear_in: whether each of the row's two events is in the lookback (a row matched by one side may
  // hold the other event outside it).
  const { rows } = await db.query<
    LivenessAlertRow & {
      raised_seq: string | null;
      cleared_seq: string | null;
      raise_in: boolean | null;
      clear_in: boolean | null;
    }
  >(
    `SELECT a.raised_seq::text AS raised_seq, a.cleared_seq::text AS cleared_seq,
            a.raised_seq < $3 AND a.raised_recorded_at >= $2::timestamptz AS raise_in,
            a.cleared_seq < $3 AND a.cleared_recorded_at >= $2::timestamptz AS clear_in, ${alertColumns}
       FROM ((SELECT * FROM liveness_alerts
               WHERE tenant_id = $1 AND raised_recorded_at >= $2::timestamptz AND raised_seq < $3
                 AND kind = ANY($4::text[])
               ORDER BY raised_recorded_at
               LIMIT $5)
             UNION
             (SELECT * FROM liveness_alerts
               WHERE tenant_id = $1 AND cleared_recorded_at >= $2::timestamptz AND cleared_seq < $3
                 AND kind = ANY($4::text[])
               ORDER BY cleared_recorded_at
               LIMIT $5)) a`,
    [tenantId, cursor.lookbackFrom, cursor.seq.toString(), entities, limit],
  );
  const found: Positioned[] = [];
  for (const row of rows) {
    if (row.raise_in === true && row.raised_seq !== null) {
      const event = fromLivenessAlertRow(row, 'raised');
      if (event) found.push({ seq: BigInt(row.raised_seq), event });
    }
    if (row.clear_in === true && row.cleared_seq !== null) {
      const event = fromLivenessAlertRow(row, 'cleared');
      if (event) found.push({ seq: BigInt(row.cleared_seq), event });
    }
  }
  return found;
}

/**
 * Occupancy changes after `since`, read per space through occupancy_changes_space_time (tenant, space, time), so
 * the cost is an index probe per space rather than a scan of the tenant's history.
 */
async function occupancySince(db: PoolClient, tenantId: string, since: Date, limit: number) {
  const { rows } = await db.query<OccupancyChangeRow>(
    `SELECT ${occupancyColumns}
       FROM spaces s
      CROSS JOIN LATERAL (
            SELECT * FROM occupancy_changes c
             WHERE c.tenant_id = s.tenant_id AND c.space_id = s.id AND c.time > $2
             ORDER BY c.time, c.event_id
             LIMIT $3) c
      WHERE s.tenant_id = $1
      ORDER BY c.time, c.event_id
      LIMIT $3`,
    [tenantId, since, limit],
  );
  return rows.map(fromOccupancyRow);
}

async function alertsSince(db: PoolClient, tenantId: string, since: Date, entities: string[], limit: number) {
  const { rows } = await db.query<LivenessAlertRow>(
    `(SELECT ${alertColumns}
        FROM liveness_alerts a
       WHERE a.tenant_id = $1 AND a.raised_at > $2 AND a.kind = ANY($3::text[])
       ORDER BY a.raised_at
       LIMIT $4)
     UNION
     (SELECT ${alertColumns}
        FROM liveness_alerts a
       WHERE a.tenant_id = $1 AND a.cleared_at > $2 AND a.kind = ANY($3::text[])
       ORDER BY a.cleared_at
       LIMIT $4)`,
    [tenantId, since, entities, limit],
  );
  const events: LiveEvent[] = [];
  for (const row of rows) {
    const raised = row.raised_at > since ? fromLivenessAlertRow(row, 'raised') : null;
    const cleared =
      row.cleared_at !== null && row.cleared_at > since ? fromLivenessAlertRow(row, 'cleared') : null;
    if (raised) events.push(raised);
    if (cleared) events.push(cleared);
  }
  return events;
}
