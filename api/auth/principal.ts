import { hashApiKey } from '../../lib/api-key.js';
import type { Pool } from '../../lib/db/pool.js';
import type { Actor } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import type { TokenService } from './tokens.js';

export const roles = ['viewer', 'operator', 'admin', 'owner'] as const;
export type Role = (typeof roles)[number];

/** The scopes an API key may carry (the api_keys_scopes_known constraint in schemas/sql). */
export const scopes = [
  'spaces:read',
  'spaces:write',
  'reservations:read',
  'reservations:write',
  'devices:read',
  'devices:write',
  'displays:write',
  'gateways:read',
  'analytics:read',
  'webhooks:write',
  'admin',
] as const;
export type Scope = (typeof scopes)[number];

/**
 * Who calls, for which tenant. `member`: a user acting in a tenant it belongs to, with that membership's role.
 * `platform_admin`: a platform admin reading a tenant it does not belong to (read-only, every unit of work
 * through withPlatformAdmin, audited). `api_key`: a tenant's key with its scopes.
 */
export type Principal =
  | { kind: 'member'; tenantId: string; userId: string; role: Role; actor: Actor }
  | { kind: 'platform_admin'; tenantId: string; userId: string; actor: Actor }
  | { kind: 'api_key'; tenantId: string; keyId: string; scopes: string[]; actor: Actor };

export interface Membership {
  tenantId: string;
  tenantSlug: string;
  tenantName: string;
  role: Role;
}

export async function userMemberships(pool: Pool, userId: string): Promise<Membership[]> {
  const { rows } = await pool.query<{
    tenant_id: string;
    tenant_slug: string;
    tenant_name: string;
    role: Role;
  }>('SELECT tenant_id, tenant_slug, tenant_name, role FROM user_memberships($1)', [userId]);
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    tenantSlug: r.tenant_slug,
    tenantName: r.tenant_name,
    role: r.role,
  }));
}

/** Where authenticate() reads headers: an express Request, or the WebSocket upgrade's adapter (api/live). */
export interface CredentialSource {
  get(name: string): string | undefined;
}

/** The `Authorization: Bearer <token>` token; null without the header, UNAUTHENTICATED when it is malformed. */
export function bearerToken(req: CredentialSource): string | null {
  const authorization = req.get('authorization');
  if (!authorization) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match?.[1]) throw new PlatformError('UNAUTHENTICATED', 'Authorization must be "Bearer <token>"');
  return match[1];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Authenticates a request: `X-API-Key` (looked up by hash through the SECURITY DEFINER authenticate_api_key(),
 * which also refuses revoked and expired keys) or `Authorization: Bearer <access token>`. For a user the tenant is
 * `X-Tenant-Id` when given, else the token's `tid`; it must be one of the user's memberships (read fresh, so a
 * removed membership or changed role applies at once) unless the user is a platform admin. Missing or bad
 * credentials: UNAUTHENTICATED; a tenant the user may not act in: FORBIDDEN.
 */
export async function authenticate(
  req: CredentialSource,
  pool: Pool,
  tokens: TokenService,
): Promise<Principal> {
  const key = req.get('x-api-key');
  if (key) {
    const { rows } = await pool.query<{ tenant_id: string; key_id: string; scopes: string[] }>(
      'SELECT tenant_id, key_id, scopes FROM authenticate_api_key($1)',
      [hashApiKey(key)],
    );
    const row = rows[0];
    if (!row) throw new PlatformError('UNAUTHENTICATED', 'unknown or revoked API key');
    return {
      kind: 'api_key',
      tenantId: row.tenant_id,
      keyId: row.key_id,
      scopes: row.scopes,
      actor: { type: 'api_key', id: row.key_id },
    };
  }
  const token = bearerToken(req);
  if (!token) throw new PlatformError('UNAUTHENTICATED', 'missing credentials (Authorization or X-API-Key)');
  const claims = await tokens.verify(token);
  const tenantId = req.get('x-tenant-id') ?? claims.tenantId;
  if (!tenantId) throw new PlatformError('FORBIDDEN', 'no tenant selected: send X-Tenant-Id');
  if (!uuid.test(tenantId)) throw new PlatformError('VALIDATION_FAILED', 'X-Tenant-Id must be a UUID');
  const actor: Actor = { type: 'user', id: claims.userId };
  const membership = (await userMemberships(pool, claims.userId)).find((m) => m.tenantId === tenantId);
  if (membership) return { kind: 'member', tenantId, userId: claims.userId, role: membership.role, actor };
  if (claims.platformAdmin) return { kind: 'platform_admin', tenantId, userId: claims.userId, actor };
  throw new PlatformError('FORBIDDEN', 'not a member of the selected tenant');
}

/** What a route requires: the least role for users, the scope for API keys; writes are refused to platform admins. */
export interface Access {
  role: Role;
  scope: Scope;
  write: boolean;
}

export function authorize(principal: Principal, access: Access): void {
  switch (principal.kind) {
    case 'api_key':
      if (!principal.scopes.includes(access.scope) && !principal.scopes.includes('admin'))
        throw new PlatformError('FORBIDDEN', `this API key lacks the scope ${access.scope}`);
      return;
    case 'member':
      if (roles.indexOf(principal.role) < roles.indexOf(access.role))
        throw new PlatformError('FORBIDDEN', `needs the role ${access.role} or higher`);
      return;
    case 'platform_admin':
      if (access.write)
        throw new PlatformError('FORBIDDEN', 'platform admins have read-only access to tenants');
      return;
  }
}
