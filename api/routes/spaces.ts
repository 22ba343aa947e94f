import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { listQuery, pageOf, pageSql, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';

const spaceStates = ['unknown', 'free', 'occupied', 'reserved', 'maintenance'] as const;

export const spaceSchema = z
  .object({
    id: z.string().uuid(),
    code: z.string(),
    name: z.string(),
    state: z.enum(spaceStates),
    stateSince: z.string().datetime().nullable(),
    lastEventTime: z.string().datetime().nullable(),
    siteId: z.string().uuid().nullable(),
    floor: z.string().nullable(),
    zone: z.string().nullable(),
    sensorDevEui: z.string().nullable().openapi({ description: 'the sensor assigned to the space' }),
    displayDevEui: z.string().nullable().openapi({ description: 'the display assigned to the space' }),
    metadata: z.record(z.unknown()),
    createdAt: z.string().datetime(),
  })
  .openapi('Space');

/** A space as the v6 API shows it (the console uses this type). Times are ISO 8601 UTC. */
export type SpaceView = z.infer<typeof spaceSchema>;

interface SpaceRow {
  id: string;
  code: string;
  name: string;
  state: SpaceView['state'];
  state_since: Date | null;
  last_event_time: Date | null;
  site_id: string | null;
  floor: string | null;
  zone: string | null;
  sensor_dev_eui: string | null;
  display_dev_eui: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  sort_key: string;
}

// The sensor and display are stored on the devices (one of each per space): joined here.
const select = `SELECT s.id, s.code, s.name, s.state, s.state_since, s.last_event_time, s.site_id, s.floor, s.zone,
  s.metadata, s.created_at,
  (SELECT d.dev_eui FROM sensor_devices d WHERE d.tenant_id = s.tenant_id AND d.space_id = s.id) AS sensor_dev_eui,
  (SELECT d.dev_eui FROM display_devices d WHERE d.tenant_id = s.tenant_id AND d.space_id = s.id) AS display_dev_eui`;

function toView(r: SpaceRow): SpaceView {
  return {
    id: r.id,
    code: r.code,
    name: r.name,
    state: r.state,
    stateSince: r.state_since?.toISOString() ?? null,
    lastEventTime: r.last_event_time?.toISOString() ?? null,
    siteId: r.site_id,
    floor: r.floor,
    zone: r.zone,
    sensorDevEui: r.sensor_dev_eui,
    displayDevEui: r.display_dev_eui,
    metadata: r.metadata,
    createdAt: r.created_at.toISOString(),
  };
}

const spaceFields = {
  code: z.string().trim().min(1).max(64),
  name: z.string().trim().min(1).max(200),
  siteId: z.string().uuid().nullable(),
  floor: z.string().max(64).nullable(),
  zone: z.string().max(64).nullable(),
  metadata: z.record(z.unknown()),
};
const createSpace = z
  .object(spaceFields)
  .partial()
  .required({ code: true, name: true })
  .strict()
  .openapi('SpaceCreate');
const updateSpace = z
  .object(spaceFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('SpaceUpdate');
const spaceParams = z.object({ spaceId: z.string().uuid() });
const devEui = z
  .string()
  .regex(/^[0-9A-Fa-f]{16}$/, 'a DevEUI is 16 hex digits')
  .transform((v) => v.toUpperCase());
const assignBody = z.object({ devEui }).strict().openapi('DeviceAssignment');
const spaceSorts = { code: 's.code', name: 's.name', createdAt: 's.created_at' } as const;
const spaceList = listQuery(['code', 'name', 'createdAt'], 'code').extend({
  siteId: z.string().uuid().optional(),
  state: z.enum(spaceStates).optional(),
  q: z.string().max(100).optional().openapi({ description: 'case-insensitive substring of code or name' }),
});

const read = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const manage = { role: 'admin', scope: 'spaces:write', write: true } as const;
const assign = { role: 'operator', scope: 'devices:write', write: true } as const;

const deviceTables = { sensor: 'sensor_devices', display: 'display_devices' } as const;

/** Spaces of the selected tenant, with their sensor and display assignment. */
export function addSpaceRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/spaces',
    operationId: 'listSpaces',
    summary: 'List spaces',
    tag: 'spaces',
    access: read,
    query: spaceList,
    status: 200,
    response: pageOf(spaceSchema),
    handler: async ({ query, read }) => {
      const page = pageSql(spaceSorts, query, 5, 's.id');
      const rows = await read(
        async (db, tenantId) =>
          (
            await db.query<SpaceRow>(
              `${select}, ${page.sortKey} FROM spaces s
                WHERE s.tenant_id = $1 AND ($2::uuid IS NULL OR s.site_id = $2) AND ($3::text IS NULL OR s.state = $3)
                  AND ($4::text IS NULL OR s.code ILIKE '%' || $4 || '%' OR s.name ILIKE '%' || $4 || '%')
                  AND ${page.after}
                ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
              [tenantId, query.siteId ?? null, query.state ?? null, query.q ?? null, ...page.params],
            )
          ).rows,
      );
      return toPage(rows, query, toView);
    },
  });
  api.add({
    method: 'post',
    path: '/spaces',
    operationId: 'createSpace',
    summary: 'Create a space',
    tag: 'spaces',
    access: manage,
    body: createSpace,
    status: 201,
    response: spaceSchema,
    handler: async ({ body, write }) =>
      write(async (db, tenantId) => {
        const { rows } = await db.query<{ id: string }>(
          `INSERT INTO spaces (tenant_id, code, name, site_id, floor, zone, metadata)
           VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'::jsonb)) RETURNING id`,
          [
            tenantId,
            body.code,
            body.name,
            body.siteId ?? null,
            body.floor ?? null,
            body.zone ?? null,
            body.metadata ?? null,
          ],
        );
        return toView(await loadSpace(db, tenantId, rows[0]!.id));
      }),
  });
  api.add({
    method: 'get',
    path: '/spaces/:spaceId',
    operationId: 'getSpace',
    summary: 'Get a space',
    tag: 'spaces',
    access: read,
    params: spaceParams,
    status: 200,
    response: spaceSchema,
    handler: async ({ params, read }) =>
      toView(await read((db, tenantId) => loadSpace(db, tenantId, params.spaceId))),
  });
  api.add({
    method: 'patch',
    path: '/spaces/:spaceId',
    operationId: 'updateSpace',
    summary: 'Update a space (only the fields given)',
    tag: 'spaces',
    access: manage,
    params: spaceParams,
    body: updateSpace,
    status: 200,
    response: spaceSchema,
    handler: async ({ params, body, write }) => {
      const has = (k: keyof typeof body) => k in body;
      return write(async (db, tenantId) => {
        const { rowCount } = await db.query(
          `UPDATE spaces SET
             code = CASE WHEN $3 THEN $4 ELSE code END,
             name = CASE WHEN $5 THEN $6 ELSE name END,
             site_id = CASE WHEN $7 THEN $8::uuid ELSE site_id END,
             floor = CASE WHEN $9 THEN $10 ELSE floor END,
             zone = CASE WHEN $11 THEN $12 ELSE zone END,
             metadata = CASE WHEN $13 THEN $14::jsonb ELSE metadata END,
             updated_at = now()
           WHERE tenant_id = $1 AND id = $2`,
          [
            tenantId,
            params.spaceId,
            has('code'),
            body.code ?? null,
            has('name'),
            body.name ?? null,
            has('siteId'),
            body.siteId ?? null,
            has('floor'),
            body.floor ?? null,
            has('zone'),
            body.zone ?? null,
            has('metadata'),
            body.metadata ?? null,
          ],
        );
        if (rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such space');
        return toView(await loadSpace(db, tenantId, params.spaceId));
      });
    },
  });
  api.add({
    method: 'delete',
    path: '/spaces/:spaceId',
    operationId: 'deleteSpace',
    summary: 'Delete a space without assigned devices',
    tag: 'spaces',
    access: manage,
    params: spaceParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write(async (db, tenantId) => {
        const space = await loadSpace(db, tenantId, params.spaceId);
        if (space.sensor_dev_eui || space.display_dev_eui)
          throw new PlatformError('CONFLICT', 'unassign the sensor and display first');
        await db.query('DELETE FROM spaces WHERE tenant_id = $1 AND id = $2', [tenantId, params.spaceId]);
      });
      return undefined;
    },
  });
  for (const kind of ['sensor', 'display'] as const) {
    const table = deviceTables[kind];
    api.add({
      method: 'put',
      path: `/spaces/:spaceId/${kind}`,
      operationId: `assign${kind === 'sensor' ? 'Sensor' : 'Display'}`,
      summary: `Assign a registered ${kind} to the space (moving it from another space if needed)`,
      tag: 'spaces',
      access: assign,
      params: spaceParams,
      body: assignBody,
      status: 200,
      response: spaceSchema,
      handler: async ({ params, body, write }) =>
        write(async (db, tenantId) => {
          const space = await loadSpace(db, tenantId, params.spaceId);
          const current = kind === 'sensor' ? space.sensor_dev_eui : space.display_dev_eui;
          if (current === body.devEui) return toView(space);
          if (current)
            throw new PlatformError('CONFLICT', `the space already has a ${kind}; unassign it first`);
          const { rowCount } = await db.query(
            `UPDATE ${table} SET space_id = $3, updated_at = now() WHERE tenant_id = $1 AND dev_eui = $2`,
            [tenantId, body.devEui, params.spaceId],
          );
          if (rowCount === 0) throw new PlatformError('NOT_FOUND', `no such ${kind}`);
          return toView(await loadSpace(db, tenantId, params.spaceId));
        }),
    });
    api.add({
      method: 'delete',
      path: `/spaces/:spaceId/${kind}`,
      operationId: `unassign${kind === 'sensor' ? 'Sensor' : 'Display'}`,
      summary: `Unassign the space's ${kind}`,
      tag: 'spaces',
      access: assign,
      params: spaceParams,
      status: 204,
      handler: async ({ params, write }) => {
        await write(async (db, tenantId) => {
          await loadSpace(db, tenantId, params.spaceId);
          const { rowCount } = await db.query(
            `UPDATE ${table} SET space_id = NULL, updated_at = now() WHERE tenant_id = $1 AND space_id = $2`,
            [tenantId, params.spaceId],
          );
          if (rowCount === 0) throw new PlatformError('NOT_FOUND', `the space has no ${kind}`);
        });
        return undefined;
      },
    });
  }
}

async function loadSpace(db: PoolClient, tenantId: string, spaceId: string): Promise<SpaceRow> {
  const { rows } = await db.query<SpaceRow>(
    `${select}, s.id::text AS sort_key FROM spaces s WHERE s.tenant_id = $1 AND s.id = $2`,
    [tenantId, spaceId],
  );
  const row = rows[0];
  if (!row) throw new PlatformError('NOT_FOUND', 'no such space');
  return row;
}
