import { PlatformError } from '../../lib/errors.js';
import { listQuery, pageOf, pageSql, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';

export const siteSchema = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    timezone: z.string(),
    address: z.string().nullable(),
    latitude: z.number().nullable(),
    longitude: z.number().nullable(),
    metadata: z.record(z.unknown()),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi('Site');

interface SiteRow {
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

const columns = 'id, name, timezone, address, latitude, longitude, metadata, created_at, updated_at';

function toView(r: SiteRow): z.infer<typeof siteSchema> {
  return {
    id: r.id,
    name: r.name,
    timezone: r.timezone,
    address: r.address,
    latitude: r.latitude,
    longitude: r.longitude,
    metadata: r.metadata,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const siteFields = {
  name: z.string().trim().min(1).max(200),
  timezone: z
    .string()
    .max(64)
    .refine(
      (tz) => Intl.supportedValuesOf('timeZone').includes(tz) || tz === 'UTC',
      'unknown IANA time zone',
    ),
  address: z.string().max(500).nullable(),
  latitude: z.number().min(-90).max(90).nullable(),
  longitude: z.number().min(-180).max(180).nullable(),
  metadata: z.record(z.unknown()),
};
const createSite = z.object(siteFields).partial().required({ name: true }).strict().openapi('SiteCreate');
const updateSite = z
  .object(siteFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('SiteUpdate');
const siteParams = z.object({ siteId: z.string().uuid() });
const siteSorts = { name: 'name', createdAt: 'created_at' } as const;
const siteList = listQuery(['name', 'createdAt'], 'name').extend({
  q: z.string().max(100).optional().openapi({ description: 'case-insensitive substring of the name' }),
});

const spaces = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const manage = { role: 'admin', scope: 'spaces:write', write: true } as const;

/** Sites of the selected tenant. Deleting a site that still has spaces is refused (409). */
export function addSiteRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/sites',
    operationId: 'listSites',
    summary: 'List sites',
    tag: 'sites',
    access: spaces,
    query: siteList,
    status: 200,
    response: pageOf(siteSchema),
    handler: async ({ query, read }) => {
      const page = pageSql(siteSorts, query, 3);
      const rows = await read(
        async (db, tenantId) =>
          (
            await db.query<SiteRow>(
              `SELECT ${columns}, ${page.sortKey} FROM sites
                WHERE tenant_id = $1 AND ($2::text IS NULL OR name ILIKE '%' || $2 || '%') AND ${page.after}
                ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
              [tenantId, query.q ?? null, ...page.params],
            )
          ).rows,
      );
      return toPage(rows, query, toView);
    },
  });
  api.add({
    method: 'post',
    path: '/sites',
    operationId: 'createSite',
    summary: 'Create a site',
    tag: 'sites',
    access: manage,
    body: createSite,
    status: 201,
    response: siteSchema,
    handler: async ({ body, write }) => {
      const row = await write(
        async (db, tenantId) =>
          (
            await db.query<SiteRow>(
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
            )
          ).rows[0]!,
      );
      return toView(row);
    },
  });
  api.add({
    method: 'get',
    path: '/sites/:siteId',
    operationId: 'getSite',
    summary: 'Get a site',
    tag: 'sites',
    access: spaces,
    params: siteParams,
    status: 200,
    response: siteSchema,
    handler: async ({ params, read }) => {
      const row = await read(
        async (db, tenantId) =>
          (
            await db.query<SiteRow>(
              `SELECT ${columns}, id::text AS sort_key FROM sites WHERE tenant_id = $1 AND id = $2`,
              [tenantId, params.siteId],
            )
          ).rows[0],
      );
      if (!row) throw new PlatformError('NOT_FOUND', 'no such site');
      return toView(row);
    },
  });
  api.add({
    method: 'patch',
    path: '/sites/:siteId',
    operationId: 'updateSite',
    summary: 'Update a site (only the fields given)',
    tag: 'sites',
    access: manage,
    params: siteParams,
    body: updateSite,
    status: 200,
    response: siteSchema,
    handler: async ({ params, body, write }) => {
      const has = (k: keyof typeof body) => k in body;
      const row = await write(
        async (db, tenantId) =>
          (
            await db.query<SiteRow>(
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
                params.siteId,
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
            )
          ).rows[0],
      );
      if (!row) throw new PlatformError('NOT_FOUND', 'no such site');
      return toView(row);
    },
  });
  api.add({
    method: 'delete',
    path: '/sites/:siteId',
    operationId: 'deleteSite',
    summary: 'Delete a site without spaces',
    tag: 'sites',
    access: manage,
    params: siteParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write(async (db, tenantId) => {
        const found = await db.query<{ spaces: number }>(
          `SELECT (SELECT count(*)::int FROM spaces WHERE tenant_id = $1 AND site_id = $2) AS spaces
             FROM sites WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
          [tenantId, params.siteId],
        );
        const site = found.rows[0];
        if (!site) throw new PlatformError('NOT_FOUND', 'no such site');
        if (site.spaces > 0) throw new PlatformError('CONFLICT', `the site still has ${site.spaces} spaces`);
        await db.query('DELETE FROM sites WHERE tenant_id = $1 AND id = $2', [tenantId, params.siteId]);
      });
      return undefined;
    },
  });
}
