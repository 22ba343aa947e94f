import { Router } from 'express';
import { z } from 'zod';
import type { Pool } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import { principalOf } from '../auth.js';

/** A space as the v6 API shows it. Times are ISO 8601 UTC. */
export interface SpaceView {
  id: string;
  code: string;
  name: string;
  state: 'unknown' | 'free' | 'occupied';
  stateSince: string | null;
  lastEventTime: string | null;
}

interface SpaceRow {
  id: string;
  code: string;
  name: string;
  state: SpaceView['state'];
  state_since: Date | null;
  last_event_time: Date | null;
}

const columns = 'id, code, name, state, state_since, last_event_time';

function toView(row: SpaceRow): SpaceView {
  return {
    id: row.id,
    code: row.code,
    name: row.name,
    state: row.state,
    stateSince: row.state_since?.toISOString() ?? null,
    lastEventTime: row.last_event_time?.toISOString() ?? null,
  };
}

const spaceIdParam = z.object({ spaceId: z.string().uuid() });

/** Spaces of the caller's tenant; every query runs inside withTenant, so RLS scopes it. */
export function spacesRouter(pool: Pool): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const { tenantId } = principalOf(req);
    const rows = await withTenant(pool, tenantId, async (db) => {
      return (await db.query<SpaceRow>(`SELECT ${columns} FROM spaces ORDER BY code`)).rows;
    });
    res.json({ data: rows.map(toView) });
  });
  router.get('/:spaceId', async (req, res) => {
    const parsed = spaceIdParam.safeParse(req.params);
    if (!parsed.success) throw new PlatformError('VALIDATION_FAILED', 'spaceId must be a UUID');
    const { tenantId } = principalOf(req);
    const row = await withTenant(pool, tenantId, async (db) => {
      return (await db.query<SpaceRow>(`SELECT ${columns} FROM spaces WHERE id = $1`, [parsed.data.spaceId]))
        .rows[0];
    });
    if (!row) throw new PlatformError('NOT_FOUND', 'no such space');
    res.json(toView(row));
  });
  return router;
}
