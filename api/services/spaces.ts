import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';

/**
 * Spaces of one tenant with their sensor and display (stored on the devices, joined here): the one
 * implementation behind v6 (`api/routes/spaces.ts`) and v5 (`api/v5/`). Runs inside the caller's unit of work.
 */
export const spaceStates = ['unknown', 'free', 'occupied', 'reserved', 'maintenance'] as const;
export type SpaceState = (typeof spaceStates)[number];

export interface SpaceRow {
  id: string;
  code: string;
  name: string;
  state: SpaceState;
  state_since: Date | null;
  last_event_time: Date | null;
  site_id: string | null;
  floor: string | null;
  zone: string | null;
  sensor_dev_eui: string | null;
  display_dev_eui: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  sort_key: string;
}

export interface SpaceFields {
  code: string;
  name: string;
  siteId: string | null;
  floor: string | null;
  zone: string | null;
  metadata: Record<string, unknown>;
}

export type DeviceKind = 'sensor' | 'display';
const deviceTables = { sensor: 'sensor_devices', display: 'display_devices' } as const;

const select = `SELECT s.id, s.code, s.name, s.state, s.state_since, s.last_event_time, s.site_id, s.floor, s.zone,
  s.metadata, s.created_at, s.updated_at,
  (SELECT d.dev_eui FROM sensor_devices d WHERE d.tenant_id = s.tenant_id AND d.space_id = s.id) AS sensor_dev_eui,
  (SELECT d.dev_eui FROM display_devices d WHERE d.tenant_id = s.tenant_id AND d.space_id = s.id) AS display_dev_eui`;

export const spaceSorts = { code: 's.code', name: 's.name', createdAt: 's.created_at' } as const;
export type SpaceSort = keyof typeof spaceSorts;

export async function listSpaces(
  db: PoolClient,
  tenantId: string,
  query: ListInput<SpaceSort> & {
    siteId?: string | undefined;
    state?: SpaceState | undefined;
    q?: string | undefined;
  },
): Promise<SpaceRow[]> {
  const page = pageSql(spaceSorts, query, 6, 's.id');
  const { rows } = await db.query<SpaceRow>(
    `${select}, ${page.sortKey} FROM spaces s
      WHERE s.tenant_id = $1 AND ($2::uuid IS NULL OR s.site_id = $2) AND ($3::text IS NULL OR s.state = $3)
        AND ($4::text IS NULL OR s.code ILIKE '%' || $4 || '%' OR s.name ILIKE '%' || $4 || '%')
        AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $5`,
    [tenantId, query.siteId ?? null, query.state ?? null, query.q ?? null, query.offset ?? 0, ...page.params],
  );
  return rows;
}

export async function countSpaces(db: PoolClient, tenantId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM spaces WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

export async function getSpace(db: PoolClient, tenantId: string, spaceId: string): Promise<SpaceRow> {
  const { rows } = await db.query<SpaceRow>(
    `${select}, s.id::text AS sort_key FROM spaces s WHERE s.tenant_id = $1 AND s.id = $2`,
    [tenantId, spaceId],
  );
  const row = rows[0];
  if (!row) throw new PlatformError('NOT_FOUND', 'no such space');
  return row;
}

export async function createSpace(
  db: PoolClient,
  tenantId: string,
  body: Partial<SpaceFields> & { code: string; name: string },
): Promise<SpaceRow> {
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
  return getSpace(db, tenantId, rows[0]!.id);
}

/** Changes only the fields present in `body`. */
export async function updateSpace(
  db: PoolClient,
  tenantId: string,
  spaceId: string,
  body: Partial<SpaceFields>,
): Promise<SpaceRow> {
  const has = (k: keyof SpaceFields) => k in body;
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
      spaceId,
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
  return getSpace(db, tenantId, spaceId);
}

/** Refused (CONFLICT) while a sensor or display is assigned. */
export async function deleteSpace(db: PoolClient, tenantId: string, spaceId: string): Promise<void> {
  const space = await getSpace(db, tenantId, spaceId);
  if (space.sensor_dev_eui || space.display_dev_eui)
    throw new PlatformError('CONFLICT', 'unassign the sensor and display first');
  await db.query('DELETE FROM spaces WHERE tenant_id = $1 AND id = $2', [tenantId, spaceId]);
}

/**
 * Assigns a registered device of the tenant to the space. Assigning the device already there is a no-op; a
 * space holding another device of that kind: CONFLICT; an unknown device: NOT_FOUND.
 */
export async function assignDevice(
  db: PoolClient,
  tenantId: string,
  spaceId: string,
  kind: DeviceKind,
  devEui: string,
): Promise<SpaceRow> {
  const space = await getSpace(db, tenantId, spaceId);
  const current = kind === 'sensor' ? space.sensor_dev_eui : space.display_dev_eui;
  if (current === devEui) return space;
  if (current) throw new PlatformError('CONFLICT', `the space already has a ${kind}; unassign it first`);
  const { rowCount } = await db.query(
    `UPDATE ${deviceTables[kind]} SET space_id = $3, updated_at = now() WHERE tenant_id = $1 AND dev_eui = $2`,
    [tenantId, devEui, spaceId],
  );
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', `no such ${kind}`);
  return getSpace(db, tenantId, spaceId);
}

/** Removes the space's device of that kind; NOT_FOUND when it has none. */
export async function unassignDevice(
  db: PoolClient,
  tenantId: string,
  spaceId: string,
  kind: DeviceKind,
): Promise<SpaceRow> {
  await getSpace(db, tenantId, spaceId);
  const { rowCount } = await db.query(
    `UPDATE ${deviceTables[kind]} SET space_id = NULL, updated_at = now() WHERE tenant_id = $1 AND space_id = $2`,
    [tenantId, spaceId],
  );
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', `the space has no ${kind}`);
  return getSpace(db, tenantId, spaceId);
}
