import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../../lib/api-key.js';
import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import type { Scope } from '../auth/principal.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';

/** API keys of one tenant (stored as SHA-256 only): the one implementation behind v6 and v5. */
export interface KeyRow {
  id: string;
  name: string;
  key_prefix: string | null;
  scopes: Scope[];
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  sort_key: string;
}

const columns = 'id, name, key_prefix, scopes, created_by, created_at, expires_at, revoked_at, last_used_at';

export const keySorts = { createdAt: 'created_at', name: 'name' } as const;
export type KeySort = keyof typeof keySorts;

export async function listApiKeys(
  db: PoolClient,
  tenantId: string,
  query: ListInput<KeySort> & { status: 'active' | 'revoked' | 'all' },
): Promise<KeyRow[]> {
  const page = pageSql(keySorts, query, 4);
  const { rows } = await db.query<KeyRow>(
    `SELECT ${columns}, ${page.sortKey} FROM api_keys
      WHERE tenant_id = $1
        AND ($2 = 'all' OR ($2 = 'revoked') = (revoked_at IS NOT NULL OR coalesce(expires_at <= now(), false)))
        AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $3`,
    [tenantId, query.status, query.offset ?? 0, ...page.params],
  );
  return rows;
}

/** Creates a key; the returned `key` is the only time the secret exists outside the caller. */
export async function createApiKey(
  db: PoolClient,
  tenantId: string,
  input: { name: string; scopes: Scope[]; expiresAt?: string | undefined; createdBy: string | null },
): Promise<{ row: KeyRow; key: string }> {
  const key = `pk_live_${randomBytes(24).toString('base64url')}`;
  const { rows } = await db.query<KeyRow>(
    `INSERT INTO api_keys (tenant_id, name, key_hash, key_prefix, scopes, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${columns}, id::text AS sort_key`,
    [
      tenantId,
      input.name,
      hashApiKey(key),
      key.slice(0, 12),
      input.scopes,
      input.createdBy,
      input.expiresAt ?? null,
    ],
  );
  return { row: rows[0]!, key };
}

/** Revokes at once; revoking twice is harmless. NOT_FOUND for another tenant's or an unknown id. */
export async function revokeApiKey(db: PoolClient, tenantId: string, keyId: string): Promise<void> {
  const { rows } = await db.query<{ revoked: boolean }>(
    'SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
    [tenantId, keyId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such API key');
  if (!rows[0].revoked)
    await db.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2', [
      tenantId,
      keyId,
    ]);
}
