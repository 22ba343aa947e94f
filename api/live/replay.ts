import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { fromOccupancyRow, type LiveEvent, type OccupancyChangeRow, type ReadyMessage } from './envelope.js';

/** Where a reconnecting client left off: the last event id it saw, or a time (events after it). */
export type ResumeRequest = { lastEventId: string } | { since: Date };

export interface ReplayLimits {
  /** More missed events than this: no replay, the client is told to resync. */
  maxEvents: number;
  /** Only events newer than this (ms before now) are replayed; an older cursor means resync. */
  windowMs: number;
}

export interface ReplayResult {
  events: LiveEvent[];
  resume: ReadyMessage['resume'];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Sorts after every id, so `(since, maxId)` means "strictly after since". */
const maxId = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

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
 * The occupancy changes a client missed, from occupancy_changes, in cursor order `(time, event_id)`, in one
 * transaction already scoped to the tenant (withTenant, or withPlatformAdmin — hence the explicit tenant filter
 * on every query). At most `maxEvents` (one more is read to tell "exactly the bound" from "more"); only within
 * the window. Read per space through occupancy_changes_space_time (tenant, space, time), so a resume costs an
 * index probe per space rather than a scan of the tenant's history.
 */
export async function replayOccupancy(
  db: PoolClient,
  tenantId: string,
  request: ResumeRequest,
  limits: ReplayLimits,
  now = Date.now(),
): Promise<ReplayResult> {
  const windowStart = new Date(now - limits.windowMs);
  let cursor: { time: string; id: string };
  if ('lastEventId' in request) {
    const { rows } = await db.query<{ t: string }>(
      `SELECT time::text AS t FROM occupancy_changes
        WHERE tenant_id = $1 AND event_id = $2 AND time >= $3`,
      [tenantId, request.lastEventId, windowStart],
    );
    const row = rows[0];
    if (!row) return { events: [], resume: { status: 'resync', reason: 'cursor-unknown' } };
    cursor = { time: row.t, id: request.lastEventId };
  } else {
    if (request.since < windowStart) return { events: [], resume: { status: 'resync', reason: 'too-old' } };
    cursor = { time: request.since.toISOString(), id: maxId };
  }
  const { rows } = await db.query<OccupancyChangeRow>(
    `SELECT c.tenant_id, c.event_id, c.time, c.space_id, c.dev_eui, c.state, c.previous_state,
            c.previous_duration_s
       FROM spaces s
      CROSS JOIN LATERAL (
            SELECT * FROM occupancy_changes c
             WHERE c.tenant_id = s.tenant_id AND c.space_id = s.id AND c.time >= $2::timestamptz
               AND (c.time, c.event_id) > ($2::timestamptz, $3::uuid)
             ORDER BY c.time, c.event_id
             LIMIT $4) c
      WHERE s.tenant_id = $1
      ORDER BY c.time, c.event_id
      LIMIT $4`,
    [tenantId, cursor.time, cursor.id, limits.maxEvents + 1],
  );
  if (rows.length > limits.maxEvents) return { events: [], resume: { status: 'resync', reason: 'too-many' } };
  return { events: rows.map(fromOccupancyRow), resume: { status: 'replayed', count: rows.length } };
}
