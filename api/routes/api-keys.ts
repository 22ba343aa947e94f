import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../../lib/api-key.js';
import { PlatformError } from '../../lib/errors.js';
import { scopes } from '../auth/principal.js';
import { listQuery, pageOf, pageSql, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';

export const apiKeySchema = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    prefix: z
      .string()
      .nullable()
      .openapi({ description: 'the first characters of the key, to recognise it' }),
    scopes: z.array(z.enum(scopes)),
    createdBy: z.string().uuid().nullable(),
    createdAt: z.string().datetime(),
    expiresAt: z.string().datetime().nullable(),
    revokedAt: z.string().datetime().nullable(),
    lastUsedAt: z.string().datetime().nullable(),
  })
  .openapi('ApiKey');

const createdKeySchema = apiKeySchema
  .extend({ key: z.string().openapi({ description: 'the secret; shown only in this response' }) })
  .openapi('ApiKeyCreated');

interface KeyRow {
  id: string;
  name: string;
  key_prefix: string | null;
  scopes: (typeof scopes)[number][];
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  sort_key: string;
}

const columns = 'id, name, key_prefix, scopes, created_by, created_at, expires_at, revoked_at, last_used_at';

function toView(r: KeyRow): z.infer<typeof apiKeySchema> {
  return {
    id: r.id,
    name: r.name,
    prefix: r.key_prefix,
    scopes: r.scopes,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at?.toISOString() ?? null,
    revokedAt: r.revoked_at?.toISOString() ?? null,
    lastUsedAt: r.last_used_at?.toISOString() ?? null,
  };
}

const createKey = z
  .object({
    name: z.string().trim().min(1).max(200),
    scopes: z.array(z.enum(scopes)).min(1).max(scopes.length),
    expiresAt: z
      .string()
      .datetime({ offset: true })
      .refine((t) => Date.parse(t) > Date.now(), 'must be in the future')
      .optional(),
  })
  .strict()
  .openapi('ApiKeyCreate');
const keyParams = z.object({ keyId: z.string().uuid() });
const keyList = listQuery(['createdAt', 'name'], '-createdAt').extend({
  status: z.enum(['active', 'revoked', 'all']).default('all'),
});
const admin = { role: 'admin', scope: 'admin', write: false } as const;
const adminWrite = { ...admin, write: true } as const;

/** API keys of the selected tenant: created (the key shown once, stored as SHA-256), listed, revoked. */
export function addApiKeyRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/api-keys',
    operationId: 'listApiKeys',
    summary: 'List API keys (never the secrets)',
    tag: 'api-keys',
    access: admin,
    query: keyList,
    status: 200,
    response: pageOf(apiKeySchema),
    handler: async ({ query, read }) => {
      const page = pageSql({ createdAt: 'created_at', name: 'name' }, query, 3);
      const rows = await read(
        async (db, tenantId) =>
          (
            await db.query<KeyRow>(
              `SELECT ${columns}, ${page.sortKey} FROM api_keys
                WHERE tenant_id = $1
                  AND ($2 = 'all' OR ($2 = 'revoked') = (revoked_at IS NOT NULL OR coalesce(expires_at <= now(), false)))
                  AND ${page.after}
                ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
              [tenantId, query.status, ...page.params],
            )
          ).rows,
      );
      return toPage(rows, query, toView);
    },
  });
  api.add({
    method: 'post',
    path: '/api-keys',
    operationId: 'createApiKey',
    summary: 'Create an API key; the response is the only time the key is shown',
    tag: 'api-keys',
    access: adminWrite,
    body: createKey,
    status: 201,
    response: createdKeySchema,
    handler: async ({ body, write, principal }) => {
      const key = `pk_live_${randomBytes(24).toString('base64url')}`;
      const createdBy = principal.kind === 'member' ? principal.userId : null;
      const row = await write(
        async (db, tenantId) =>
          (
            await db.query<KeyRow>(
              `INSERT INTO api_keys (tenant_id, name, key_hash, key_prefix, scopes, created_by, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${columns}, id::text AS sort_key`,
              [
                tenantId,
                body.name,
                hashApiKey(key),
                key.slice(0, 12),
                body.scopes,
                createdBy,
                body.expiresAt ?? null,
              ],
            )
          ).rows[0]!,
      );
      return { ...toView(row), key };
    },
  });
  api.add({
    method: 'delete',
    path: '/api-keys/:keyId',
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key (at once; revoking twice is harmless)',
    tag: 'api-keys',
    access: adminWrite,
    params: keyParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write(async (db, tenantId) => {
        const { rows } = await db.query<{ revoked: boolean }>(
          'SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
          [tenantId, params.keyId],
        );
        if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such API key');
        if (!rows[0].revoked)
          await db.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2', [
            tenantId,
            params.keyId,
          ]);
      });
      return undefined;
    },
  });
}
