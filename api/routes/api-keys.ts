import { scopes } from '../auth/principal.js';
import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import { createApiKey, listApiKeys, revokeApiKey, type KeyRow } from '../services/api-keys.js';

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
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listApiKeys(db, tenantId, query)), query, toView),
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
      const createdBy = principal.kind === 'member' ? principal.userId : null;
      const { row, key } = await write((db, tenantId) => createApiKey(db, tenantId, { ...body, createdBy }));
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
      await write((db, tenantId) => revokeApiKey(db, tenantId, params.keyId));
      return undefined;
    },
  });
}
