import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import type { Role } from '../auth/principal.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';

/** The selected tenant, its users and its usage: the one implementation behind v6 and v5. */
export interface TenantRow {
  id: string;
  slug: string;
  name: string;
  is_active: boolean;
  settings: Record<string, unknown>;
  limits: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export async function getTenant(db: PoolClient, tenantId: string): Promise<TenantRow> {
  const { rows } = await db.query<TenantRow>(
    'SELECT id, slug, name, is_active, settings, limits, created_at, updated_at FROM tenants WHERE id = $1',
    [tenantId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such tenant');
  return rows[0];
}

/** Changes the name and/or replaces the settings object (the fields present). */
export async function updateTenant(
  db: PoolClient,
  tenantId: string,
  body: { name?: string | undefined; settings?: Record<string, unknown> | undefined },
): Promise<TenantRow> {
  await db.query(
    `UPDATE tenants SET name = coalesce($2, name), settings = coalesce($3::jsonb, settings), updated_at = now()
      WHERE id = $1`,
    [tenantId, body.name ?? null, body.settings ?? null],
  );
  return getTenant(db, tenantId);
}

export interface UserRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  is_active: boolean;
  email_verified: boolean;
  last_login_at: Date | null;
  created_at: Date;
  updated_at: Date;
  sort_key: string;
}

const userColumns = `u.id, u.email, u.name, m.role, u.is_active, u.email_verified, u.last_login_at, u.created_at,
  u.updated_at`;

export const userSorts = { email: 'u.email', name: 'u.name', createdAt: 'u.created_at' } as const;
export type UserSort = keyof typeof userSorts;

/** Members of the tenant with their role there. */
export async function listUsers(
  db: PoolClient,
  tenantId: string,
  query: ListInput<UserSort>,
): Promise<UserRow[]> {
  const page = pageSql(userSorts, query, 3, 'u.id');
  const { rows } = await db.query<UserRow>(
    `SELECT ${userColumns}, ${page.sortKey}
       FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.tenant_id = $1 AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $2`,
    [tenantId, query.offset ?? 0, ...page.params],
  );
  return rows;
}

/** A member of the tenant; NOT_FOUND for anyone else (users are visible only through a membership). */
export async function getUser(db: PoolClient, tenantId: string, userId: string): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${userColumns}, u.id::text AS sort_key
       FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND u.id = $2`,
    [tenantId, userId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such user in this tenant');
  return rows[0];
}

export interface Usage {
  spaces: number;
  sites: number;
  sensor_devices: number;
  display_devices: number;
  active_reservations: number;
}

/** Current resource counts of the tenant. */
export async function tenantUsage(db: PoolClient, tenantId: string): Promise<Usage> {
  const { rows } = await db.query<Usage>(
    `SELECT (SELECT count(*)::int FROM spaces WHERE tenant_id = $1) AS spaces,
            (SELECT count(*)::int FROM sites WHERE tenant_id = $1) AS sites,
            (SELECT count(*)::int FROM sensor_devices WHERE tenant_id = $1 AND archived_at IS NULL) AS sensor_devices,
            (SELECT count(*)::int FROM display_devices WHERE tenant_id = $1 AND archived_at IS NULL) AS display_devices,
            (SELECT count(*)::int FROM reservations
              WHERE tenant_id = $1 AND status IN ('pending', 'confirmed') AND upper(during) > now()) AS active_reservations`,
    [tenantId],
  );
  return rows[0]!;
}

/**
 * Adds an existing user (by email, found through the SECURITY DEFINER find_login_user) to the tenant. NOT_FOUND
 * when no such user; CONFLICT when already a member. Users are created only by registration.
 */
export async function addMember(
  db: PoolClient,
  tenantId: string,
  input: { email: string; role: Role },
): Promise<UserRow> {
  const { rows } = await db.query<{ user_id: string }>('SELECT user_id FROM find_login_user($1)', [
    input.email,
  ]);
  const userId = rows[0]?.user_id;
  if (!userId) throw new PlatformError('NOT_FOUND', 'no user with this email');
  await db.query('INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)', [
    tenantId,
    userId,
    input.role,
  ]);
  return getUser(db, tenantId, userId);
}

async function ownerCount(db: PoolClient, tenantId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM memberships WHERE tenant_id = $1 AND role = 'owner'",
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Changes a member's role. Only an owner may make or unmake owners (`actorRole`), and the last owner stays one
 * (CONFLICT), so a tenant is never left without an owner.
 */
export async function changeMemberRole(
  db: PoolClient,
  tenantId: string,
  userId: string,
  role: Role,
  actorRole: Role | null,
): Promise<UserRow> {
  const member = await getUser(db, tenantId, userId);
  if ((member.role === 'owner' || role === 'owner') && actorRole !== 'owner')
    throw new PlatformError('FORBIDDEN', 'only an owner may grant or take the owner role');
  if (member.role === 'owner' && role !== 'owner' && (await ownerCount(db, tenantId)) <= 1)
    throw new PlatformError('CONFLICT', 'the tenant must keep an owner');
  await db.query(
    'UPDATE memberships SET role = $3, updated_at = now() WHERE tenant_id = $1 AND user_id = $2',
    [tenantId, userId, role],
  );
  return getUser(db, tenantId, userId);
}

/** Removes a member from the tenant (the user stays); the same owner rules as changeMemberRole. */
export async function removeMember(
  db: PoolClient,
  tenantId: string,
  userId: string,
  actorRole: Role | null,
): Promise<void> {
  const member = await getUser(db, tenantId, userId);
  if (member.role === 'owner' && actorRole !== 'owner')
    throw new PlatformError('FORBIDDEN', 'only an owner may remove an owner');
  if (member.role === 'owner' && (await ownerCount(db, tenantId)) <= 1)
    throw new PlatformError('CONFLICT', 'the tenant must keep an owner');
  await db.query('DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2', [tenantId, userId]);
}
