import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { pageSql } from '../http/pagination.js';

/**
 * Sites of one tenant: the one implementation behind v6 (`api/routes/sites.ts`) and v5 (`api/v5/`). Every
 * function runs inside the caller's withTenant/withPlatformAdmin unit of work and filters on `tenantId`.
 */
export interface SiteRow {
  id: string;
  name: string;
  timezone: string;
  address: string | null;
  latitude: number | null;
  longitude: number | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  sort_key: string;
}

export interface SiteFields {
  name: string;
  timezone: string;
  address: string | null;
  latitude: number | null;
  longitude: number | null;
  metadata: Record<string, unknown>;
}

export const siteSorts = { name: 'name', createdAt: 'created_at' } as const;
export type SiteSort = keyof typeof siteSorts;

/** Paging as in api/http/pagination.ts; `offset` (v5) skips rows after the keyset condition. */
export interface ListInput<K extends string> {
  limit: number;
  cursor?: string | undefined;
  sort: K | `-${K}`;
  offset?: number | undefined;
}

const columns = 'id, name, timezone, address, latitude, longitude, metadata, created_at, updated_at';

export async function listSites(
  db: PoolClient,
  tenantId: string,
  query: ListInput<SiteSort> & { q?: string | undefined },
): Promise<SiteRow[]> {
  const page = pageSql(siteSorts, query, 4);
  const { rows } = await db.query<SiteRow>(
    `SELECT ${columns}, ${page.sortKey} FROM sites
      WHERE tenant_id = $1 AND ($2::text IS NULL OR name ILIKE '%' || $2 || '%') AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $3`,
    [tenantId, query.q ?? null, query.offset ?? 0, ...page.params],
  );
  return rows;
}

export async function countSites(db: PoolClient, tenantId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM sites WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

export async function getSite(db: PoolClient, tenantId: string, siteId: string): Promise<SiteRow> {
  const { rows } = await db.query<SiteRow>(
    `SELECT ${columns}, id::text AS sort_key FROM sites WHERE tenant_id = $1 AND id = $2`,
    [tenantId, siteId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such site');
  return rows[0];
}

export async function createSite(
  db: PoolClient,
  tenantId: string,
  body: Partial<SiteFields> & { name: string },
): Promise<SiteRow> {
  const { rows } = await db.query<SiteRow>(
    `INSERT INTO sites (tenant_id, name, timezone, address, latitude, longitude, metadata)
     VALUES ($1, $2, coalesce($3, 'UTC'), $4, $5, $6, coalesce($7, '{}'::jsonb))
     RETURNING ${columns}, id::text AS sort_key`,
    [
      tenantId,
      body.name,
      body.timezone ?? null,
      body.address ?? null,
      body.latitude ?? null,
      body.longitude ?? null,
      body.metadata ?? null,
    ],
  );
  return rows[0]!;
}

/** Changes only the fields present in `body`. */
export async function updateSite(
  db: PoolClient,
  tenantId: string,
  siteId: string,
  body: Partial<SiteFields>,
): Promise<SiteRow> {
  const has = (k: keyof SiteFields) => k in body;
  const { rows } = await db.query<SiteRow>(
    `UPDATE sites SET
       name = CASE WHEN $3 THEN $4 ELSE name END,
       timezone = CASE WHEN $5 THEN $6 ELSE timezone END,
       address = CASE WHEN $7 THEN $8 ELSE address END,
       latitude = CASE WHEN $9 THEN $10::double precision ELSE latitude END,
       longitude = CASE WHEN $11 THEN $12::double precision ELSE longitude END,
       metadata = CASE WHEN $13 THEN $14::jsonb ELSE metadata END,
       updated_at = now()
     WHERE tenant_id = $1 AND id = $2 RETURNING ${columns}, id::text AS sort_key`,
    [
      tenantId,
      siteId,
      has('name'),
      body.name ?? null,
      has('timezone'),
      body.timezone ?? null,
      has('address'),
      body.address ?? null,
      has('latitude'),
      body.latitude ?? null,
      has('longitude'),
      body.longitude ?? null,
      has('metadata'),
      body.metadata ?? null,
    ],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such site');
  return rows[0];
}

/** Refused (CONFLICT) while the site still has spaces. */
export async function deleteSite(db: PoolClient, tenantId: string, siteId: string): Promise<void> {
  const found = await db.query<{ spaces: number }>(
    `SELECT (SELECT count(*)::int FROM spaces WHERE tenant_id = $1 AND site_id = $2) AS spaces
       FROM sites WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
    [tenantId, siteId],
  );
  const site = found.rows[0];
  if (!site) throw new PlatformError('NOT_FOUND', 'no such site');
  if (site.spaces > 0) throw new PlatformError('CONFLICT', `the site still has ${site.spaces} spaces`);
  await db.query('DELETE FROM sites WHERE tenant_id = $1 AND id = $2', [tenantId, siteId]);
}
