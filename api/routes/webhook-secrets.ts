import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  createWebhookSecret,
  listWebhookSecrets,
  previousSecretValidityS,
  rotateWebhookSecret,
  type SecretRow,
} from '../services/webhook-secrets.js';

const secretSchema = z
  .object({
    id: z.string().uuid(),
    status: z.enum(['current', 'previous', 'revoked']),
    createdAt: z.string().datetime(),
    rotatedAt: z.string().datetime().nullable(),
    expiresAt: z.string().datetime().nullable(),
  })
  .openapi('WebhookSecret');

const createdSecretSchema = secretSchema
  .extend({
    secret: z.string().openapi({ description: 'the HMAC key; shown only in this response' }),
  })
  .openapi('WebhookSecretCreated');

function toView(r: SecretRow): z.infer<typeof secretSchema> {
  return {
    id: r.id,
    status: r.status,
    createdAt: r.created_at.toISOString(),
    rotatedAt: r.rotated_at?.toISOString() ?? null,
    expiresAt: r.expires_at?.toISOString() ?? null,
  };
}

const access = { role: 'admin', scope: 'webhooks:write', write: false } as const;
const write = { ...access, write: true } as const;

/**
 * The tenant's webhook signing secrets: the secret is shown once (create, rotate) and never listed. After a
 * rotation the previous secret stays valid for `previousSecretValidityS`.
 */
export function addWebhookSecretRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/webhook-secrets',
    operationId: 'listWebhookSecrets',
    summary: 'List webhook secrets (never the secrets themselves), newest first',
    tag: 'webhook-secrets',
    access,
    status: 200,
    response: z.object({ data: z.array(secretSchema) }),
    handler: async ({ read }) => ({
      data: (await read((db, tenantId) => listWebhookSecrets(db, tenantId))).map(toView),
    }),
  });
  api.add({
    method: 'post',
    path: '/webhook-secrets',
    operationId: 'createWebhookSecret',
    summary: "The tenant's first webhook secret (409 when it has one: rotate instead); shown only here",
    tag: 'webhook-secrets',
    access: write,
    status: 201,
    response: createdSecretSchema,
    handler: async ({ write }) => {
      const { row, secret } = await write((db, tenantId) => createWebhookSecret(db, tenantId));
      return { ...toView(row), secret };
    },
  });
  api.add({
    method: 'post',
    path: '/webhook-secrets/rotate',
    operationId: 'rotateWebhookSecret',
    summary: `Make a new current secret; the old one stays valid for ${previousSecretValidityS / 3600} hours`,
    tag: 'webhook-secrets',
    access: write,
    status: 201,
    response: createdSecretSchema,
    handler: async ({ write }) => {
      const { row, secret } = await write((db, tenantId) => rotateWebhookSecret(db, tenantId));
      return { ...toView(row), secret };
    },
  });
}
