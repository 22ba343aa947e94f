import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import { verifyPassword } from './passwords.js';
import { userMemberships, type Membership } from './principal.js';
import type { TokenService } from './tokens.js';

/**
 * Login, refresh and logout. Refresh tokens are opaque, `rt_<tenant id>_<43 random chars>`, stored only as
 * their SHA-256 in the tenant's refresh_tokens (so the lookup runs under that tenant's RLS). Every refresh
 * rotates: the presented token is marked replaced and a new one of the same family issued. Presenting a replaced
 * token again means it was copied: the whole family is revoked (committed) and the caller gets 401.
 */
export interface SessionSettings {
  refreshTokenTtlS: number;
}

export interface Session {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  /** Null for a platform admin without any membership (no tenant to store it in): log in again instead. */
  refreshToken: string | null;
  tenantId: string | null;
  platformAdmin: boolean;
  memberships: Membership[];
}

const refreshPattern =
  /^rt_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function parseRefreshToken(token: string): { tenantId: string; hash: Buffer } {
  const match = refreshPattern.exec(token);
  if (!match?.[1]) throw new PlatformError('UNAUTHENTICATED', 'invalid refresh token');
  return { tenantId: match[1], hash: createHash('sha256').update(token).digest() };
}

function newRefreshToken(tenantId: string): { token: string; hash: Buffer } {
  const token = `rt_${tenantId}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: createHash('sha256').update(token).digest() };
}

async function isPlatformAdmin(pool: Pool, userId: string): Promise<boolean> {
  const { rows } = await pool.query<{ yes: boolean }>('SELECT app_is_platform_admin($1) AS yes', [userId]);
  return rows[0]?.yes === true;
}

async function storeRefreshToken(
  db: PoolClient,
  tenantId: string,
  userId: string,
  familyId: string,
  ttlS: number,
): Promise<{ id: string; token: string }> {
  const { token, hash } = newRefreshToken(tenantId);
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO refresh_tokens (tenant_id, user_id, token_hash, family_id, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id`,
    [tenantId, userId, hash, familyId, ttlS],
  );
  return { id: rows[0]!.id, token };
}

export function createSessions(pool: Pool, tokens: TokenService, settings: SessionSettings) {
  return {
    /**
     * Email + password. The tenant is the one asked for (a membership, or any tenant for a platform admin),
     * else the user's first membership; the client switches later with X-Tenant-Id, no new login needed.
     */
    async login(
      input: { email: string; password: string; tenantId?: string | undefined },
      requestId: string,
    ) {
      const { rows } = await pool.query<{
        user_id: string;
        password_hash: string | null;
        is_active: boolean;
      }>('SELECT user_id, password_hash, is_active FROM find_login_user($1)', [input.email]);
      const user = rows[0];
      const matches = await verifyPassword(input.password, user?.password_hash);
      if (!user || !matches || !user.is_active)
        throw new PlatformError('UNAUTHENTICATED', 'invalid email or password');
      const [memberships, platformAdmin] = await Promise.all([
        userMemberships(pool, user.user_id),
        isPlatformAdmin(pool, user.user_id),
      ]);
      const asked = input.tenantId;
      if (asked && !platformAdmin && !memberships.some((m) => m.tenantId === asked))
        throw new PlatformError('FORBIDDEN', 'not a member of that tenant');
      const tenantId = asked ?? memberships[0]?.tenantId ?? null;
      // The refresh token lives in a tenant the user belongs to: the selected one, else the first.
      const home = memberships.find((m) => m.tenantId === tenantId) ?? memberships[0];
      const refreshToken = home
        ? (
            await withTenant(
              pool,
              home.tenantId,
              (db) =>
                storeRefreshToken(db, home.tenantId, user.user_id, randomUUID(), settings.refreshTokenTtlS),
              { actor: { type: 'user', id: user.user_id }, requestId },
            )
          ).token
        : null;
      const access = await tokens.issue({ userId: user.user_id, tenantId, platformAdmin });
      return {
        ...access,
        tokenType: 'Bearer',
        refreshToken,
        tenantId,
        platformAdmin,
        memberships,
      } satisfies Session;
    },

    async refresh(refreshToken: string, requestId: string): Promise<Session> {
      const { tenantId, hash } = parseRefreshToken(refreshToken);
      const outcome = await withTenant(
        pool,
        tenantId,
        async (db) => {
          const { rows } = await db.query<{
            id: string;
            user_id: string;
            family_id: string;
            replaced_by: string | null;
            revoked_at: Date | null;
            live: boolean;
          }>(
            `SELECT id, user_id, family_id, replaced_by, revoked_at, expires_at > now() AS live
               FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE`,
            [tenantId, hash],
          );
          const row = rows[0];
          if (!row) return { kind: 'invalid' as const };
          await db.query(
            `SELECT set_config('app.actor_type', 'user', true), set_config('app.actor_id', $1, true)`,
            [row.user_id],
          );
          if (row.replaced_by) {
            await db.query(
              `UPDATE refresh_tokens SET revoked_at = now()
                WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL`,
              [tenantId, row.family_id],
            );
            return { kind: 'reused' as const };
          }
          if (row.revoked_at || !row.live) return { kind: 'invalid' as const };
          const next = await storeRefreshToken(
            db,
            tenantId,
            row.user_id,
            row.family_id,
            settings.refreshTokenTtlS,
          );
          await db.query(
            'UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $3 WHERE tenant_id = $1 AND id = $2',
            [tenantId, row.id, next.id],
          );
          return { kind: 'rotated' as const, userId: row.user_id, token: next.token };
        },
        { requestId },
      );
      if (outcome.kind === 'reused')
        throw new PlatformError(
          'UNAUTHENTICATED',
          'refresh token reused: every session of this login is revoked',
        );
      if (outcome.kind === 'invalid')
        throw new PlatformError('UNAUTHENTICATED', 'invalid, expired or revoked refresh token');
      const [memberships, platformAdmin] = await Promise.all([
        userMemberships(pool, outcome.userId),
        isPlatformAdmin(pool, outcome.userId),
      ]);
      const access = await tokens.issue({ userId: outcome.userId, tenantId, platformAdmin });
      return {
        ...access,
        tokenType: 'Bearer',
        refreshToken: outcome.token,
        tenantId,
        platformAdmin,
        memberships,
      };
    },

    /** Revokes the token's whole family. Unknown tokens are ignored, so logout never tells what exists. */
    async logout(refreshToken: string, requestId: string): Promise<void> {
      const match = refreshPattern.exec(refreshToken);
      if (!match) return;
      const { tenantId, hash } = parseRefreshToken(refreshToken);
      await withTenant(
        pool,
        tenantId,
        async (db) => {
          const { rows } = await db.query<{ user_id: string; family_id: string }>(
            'SELECT user_id, family_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2',
            [tenantId, hash],
          );
          const row = rows[0];
          if (!row) return;
          await db.query(
            `SELECT set_config('app.actor_type', 'user', true), set_config('app.actor_id', $1, true)`,
            [row.user_id],
          );
          await db.query(
            'UPDATE refresh_tokens SET revoked_at = now() WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL',
            [tenantId, row.family_id],
          );
        },
        { requestId },
      );
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
