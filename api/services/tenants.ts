import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import { hashPassword } from '../auth/passwords.js';
import type { Role } from '../auth/principal.js';
import { pageSql } from '../http/pagination.js';
import { invalid } from '../http/validation.js';
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

/** An invite's state; `expired`: neither accepted nor revoked before `expires_at`. */
export const inviteStatuses = ['pending', 'accepted', 'revoked', 'expired'] as const;
export type InviteStatus = (typeof inviteStatuses)[number];

export interface InviteRow {
  id: string;
  email: string;
  role: Role;
  status: InviteStatus;
  invited_by: string | null;
  expires_at: Date;
  accepted_at: Date | null;
  accepted_by: string | null;
  revoked_at: Date | null;
  created_at: Date;
  sort_key: string;
}

const inviteColumns = `id, email, role, invited_by, expires_at, accepted_at, accepted_by, revoked_at, created_at,
  CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked'
       WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END AS status`;

export const inviteSorts = { createdAt: 'created_at', email: 'email' } as const;
export type InviteSort = keyof typeof inviteSorts;

const invitePattern =
  /^inv_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** `inv_<tenant id>_<43 random chars>`: the tenant tells acceptance where to look; only the SHA-256 is stored. */
function newInviteToken(tenantId: string): { token: string; hash: Buffer } {
  const token = `inv_${tenantId}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: createHash('sha256').update(token).digest() };
}

/** The tenant and hash of an invite token; NOT_FOUND when it is not one (the same answer as an unknown token). */
export function parseInviteToken(token: string): { tenantId: string; hash: Buffer } {
  const match = invitePattern.exec(token);
  if (!match?.[1]) throw new PlatformError('NOT_FOUND', 'no such invite');
  return { tenantId: match[1], hash: createHash('sha256').update(token).digest() };
}

async function memberIdByEmail(db: PoolClient, tenantId: string, email: string): Promise<string | null> {
  const { rows } = await db.query<{ user_id: string }>(
    `SELECT m.user_id FROM find_login_user($2) f JOIN memberships m ON m.user_id = f.user_id
      WHERE m.tenant_id = $1`,
    [tenantId, email],
  );
  return rows[0]?.user_id ?? null;
}

/**
 * Invites an email with a role; the token is returned here and never again. An open invite of the same email is
 * revoked first (one open invite per email), so inviting again is how an invite is renewed. CONFLICT when the
 * email already belongs to a member.
 */
export async function createInvite(
  db: PoolClient,
  tenantId: string,
  input: { email: string; role: Role; invitedBy: string | null; expiresInS: number },
): Promise<{ invite: InviteRow; token: string }> {
  const email = input.email.toLowerCase();
  if (await memberIdByEmail(db, tenantId, email))
    throw new PlatformError('CONFLICT', 'this email already belongs to a member');
  await db.query(
    `UPDATE member_invites SET revoked_at = now()
      WHERE tenant_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL`,
    [tenantId, email],
  );
  const { token, hash } = newInviteToken(tenantId);
  const { rows } = await db.query<InviteRow>(
    `INSERT INTO member_invites (tenant_id, email, role, token_hash, invited_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
     RETURNING ${inviteColumns}, id::text AS sort_key`,
    [tenantId, email, input.role, hash, input.invitedBy, input.expiresInS],
  );
  return { invite: rows[0]!, token };
}

export async function listInvites(
  db: PoolClient,
  tenantId: string,
  query: ListInput<InviteSort> & { status?: InviteStatus | undefined },
): Promise<InviteRow[]> {
  const page = pageSql(inviteSorts, query, 4);
  const { rows } = await db.query<InviteRow>(
    `SELECT * FROM (SELECT tenant_id, ${inviteColumns}, ${page.sortKey} FROM member_invites) i
      WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $3`,
    [tenantId, query.status ?? null, query.offset ?? 0, ...page.params],
  );
  return rows;
}

/** Revokes a pending or expired invite (revoking twice is harmless); CONFLICT once it was accepted. */
export async function revokeInvite(db: PoolClient, tenantId: string, inviteId: string): Promise<InviteRow> {
  const { rows } = await db.query<InviteRow>(
    `SELECT ${inviteColumns}, id::text AS sort_key FROM member_invites WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
    [tenantId, inviteId],
  );
  const invite = rows[0];
  if (!invite) throw new PlatformError('NOT_FOUND', 'no such invite');
  if (invite.status === 'accepted') throw new PlatformError('CONFLICT', 'the invite was already accepted');
  if (invite.status === 'revoked') return invite;
  const updated = await db.query<InviteRow>(
    `UPDATE member_invites SET revoked_at = now() WHERE tenant_id = $1 AND id = $2
     RETURNING ${inviteColumns}, id::text AS sort_key`,
    [tenantId, inviteId],
  );
  return updated.rows[0]!;
}

/** Who accepts: the logged-in user (its id), or a new user (an id chosen by the caller and a password hash). */
export type Invitee =
  | { kind: 'existing'; userId: string }
  | { kind: 'new'; userId: string; passwordHash: string; name: string | null };

/**
 * Accepts an invite, in the unit of work of the invite's tenant (`parseInviteToken`) with the invitee as actor:
 * the invite must be pending (unknown: NOT_FOUND; accepted, revoked or expired: CONFLICT). An existing user must
 * own the invited email and be active (FORBIDDEN otherwise); a new user is refused when the email already has an
 * account (CONFLICT: log in and accept with the access token). Then the membership is added and the invite closed.
 */
export async function acceptInvite(
  db: PoolClient,
  tenantId: string,
  tokenHash: Buffer,
  invitee: Invitee,
): Promise<{ invite: InviteRow; userCreated: boolean }> {
  const { rows } = await db.query<InviteRow>(
    `SELECT ${inviteColumns}, id::text AS sort_key FROM member_invites
      WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE`,
    [tenantId, tokenHash],
  );
  const invite = rows[0];
  if (!invite) throw new PlatformError('NOT_FOUND', 'no such invite');
  if (invite.status !== 'pending') throw new PlatformError('CONFLICT', `the invite is ${invite.status}`);
  const found = await db.query<{ user_id: string; is_active: boolean }>(
    'SELECT user_id, is_active FROM find_login_user($1)',
    [invite.email],
  );
  const owner = found.rows[0]?.user_id ?? null;
  if (invitee.kind === 'existing') {
    if (owner !== invitee.userId)
      throw new PlatformError('FORBIDDEN', 'this invite is for another email address');
    if (!found.rows[0]?.is_active) throw new PlatformError('FORBIDDEN', 'this account is deactivated');
  } else {
    if (owner)
      throw new PlatformError(
        'CONFLICT',
        'an account with this email exists: log in and accept the invite with the access token',
      );
    await db.query('SELECT create_invited_user($1, $2, $3, $4)', [
      invitee.userId,
      invite.email,
      invitee.name,
      invitee.passwordHash,
    ]);
  }
  await db.query('INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)', [
    tenantId,
    invitee.userId,
    invite.role,
  ]);
  const accepted = await db.query<InviteRow>(
    `UPDATE member_invites SET accepted_at = now(), accepted_by = $3 WHERE tenant_id = $1 AND id = $2
     RETURNING ${inviteColumns}, id::text AS sort_key`,
    [tenantId, invite.id, invitee.userId],
  );
  return { invite: accepted.rows[0]!, userCreated: invitee.kind === 'new' };
}

/**
 * Invite acceptance as the public route does it: the token names the tenant; a logged-in user (`bearerUserId`)
 * joins as itself, anyone else becomes a new user with `password` (required then; hashed before the transaction).
 * One unit of work in the invite's tenant, audited with the invitee as actor and `requestId`.
 */
export async function acceptInviteToken(
  pool: Pool,
  input: { token: string; password?: string | undefined; name?: string | undefined },
  bearerUserId: string | null,
  requestId: string,
): Promise<{ tenantId: string; userId: string; invite: InviteRow; userCreated: boolean }> {
  const { tenantId, hash } = parseInviteToken(input.token);
  let invitee: Invitee;
  if (bearerUserId) invitee = { kind: 'existing', userId: bearerUserId };
  else {
    if (!input.password)
      throw invalid([
        { in: 'body', field: 'password', message: 'required to create an account (or log in first)' },
      ]);
    invitee = {
      kind: 'new',
      userId: randomUUID(),
      passwordHash: await hashPassword(input.password),
      name: input.name ?? null,
    };
  }
  const result = await withTenant(pool, tenantId, (db) => acceptInvite(db, tenantId, hash, invitee), {
    actor: { type: 'user', id: invitee.userId },
    requestId,
  });
  return { tenantId, userId: invitee.userId, ...result };
}
