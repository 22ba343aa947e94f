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

/** A replayed event with the position it is ordered by: the commit-ordered `seq`, or (time, id) for `since`. */
interface Positioned {
  seq: bigint;
  event: LiveEvent;
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
 * `lastEventId`: the cursor is the position (`live_event_seq`, taken when the row was written; schemas/sql
 * 1733800000000) of the event with that id, of any replayable kind and whether or not this connection receives
 * that kind; everything of `kinds` written after it is replayed in position order, whatever its time — a change
 * recorded later with an earlier time included. The cursor event must be within the window, else resync.
 * `since`: the events that happened after that time, in (time, id) order.
 *
 * At most `maxEvents` (each query reads one more, to tell "exactly the bound" from "more"); each query is an index
 * range scan (tenant, position) or (tenant, time), so a resume costs its result, not the tenant's history.
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
    const cursor = await cursorOf(db, tenantId, request.lastEventId, windowStart);
    if (cursor === null) return { events: [], resume: { status: 'resync', reason: 'cursor-unknown' } };
    const found: Positioned[] = [];
    if (wanted.has('occupancy.changed')) found.push(...(await occupancyAfter(db, tenantId, cursor, limit)));
    const entities = alertKinds(wanted);
    if (entities.length > 0) found.push(...(await alertsAfter(db, tenantId, cursor, entities, limit)));
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

/** The position of a replayable event by its id, if it is the tenant's, positioned and within the window. */
async function cursorOf(
  db: PoolClient,
  tenantId: string,
  id: string,
  windowStart: Date,
): Promise<bigint | null> {
  const { rows } = await db.query<{ seq: string }>(
    `SELECT seq::text FROM (
       SELECT seq FROM occupancy_changes WHERE tenant_id = $1 AND event_id = $2 AND time >= $3
       UNION ALL
       SELECT raised_seq FROM liveness_alerts WHERE tenant_id = $1 AND alert_id = $2 AND raised_at >= $3
       UNION ALL
       SELECT cleared_seq FROM liveness_alerts WHERE tenant_id = $1 AND clear_event_id = $2 AND cleared_at >= $3
     ) c
     WHERE seq IS NOT NULL
     LIMIT 1`,
    [tenantId, id, windowStart],
  );
  const row = rows[0];
  return row ? BigInt(row.seq) : null;
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
