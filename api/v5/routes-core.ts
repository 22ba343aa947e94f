import type { Pool } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError } from '../../lib/errors.js';
import { scopes, userMemberships, type Membership } from '../auth/principal.js';
import type { Sessions } from '../auth/sessions.js';
import type { TokenService } from '../auth/tokens.js';
import type { RateLimits } from '../http/rate-limit.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import { siteFields } from '../routes/sites.js';
import { spaceFields } from '../routes/spaces.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../services/api-keys.js';
import { registerDevice, deviceKindOf } from '../services/devices.js';
import { minPasswordLength, registerTenant } from '../services/registration.js';
import { occupancyBySite, occupancyRate, totalCounts } from '../services/occupancy.js';
import { createSite, getSite, listSites, updateSite } from '../services/sites.js';
import {
  assignDevice,
  deleteSpace,
  getSpace,
  listSpaces,
  unassignDevice,
  updateSpace,
  type DeviceKind,
} from '../services/spaces.js';
import { getTenant, getUser, listUsers, tenantUsage, updateTenant } from '../services/tenants.js';
import { createWebhookSecret, rotateWebhookSecret } from '../services/webhook-secrets.js';
import { v5ListQuery, v5Page, v5Sort } from './paging.js';
import { apiKeyV5, siteV5, spaceV5, tenantV5, userProfileV5, userV5, webhookSecretV5 } from './views.js';

export interface V5CoreDeps {
  pool: Pool;
  sessions: Sessions;
  tokens: TokenService;
  refreshTokenTtlS: number;
  limits: RateLimits;
}

const body = z.unknown();
const viewer = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const spacesWrite = { role: 'admin', scope: 'spaces:write', write: true } as const;
const devicesWrite = { role: 'admin', scope: 'devices:write', write: true } as const;
const admin = { role: 'admin', scope: 'admin', write: false } as const;
const adminWrite = { ...admin, write: true } as const;
const webhooks = { role: 'admin', scope: 'webhooks:write', write: true } as const;

const eui = z.string().regex(/^[0-9A-Fa-f]{16}$/, 'an EUI is 16 hex digits');
const spaceParams = z.object({ space_id: z.string().uuid() });
const siteParams = z.object({ site_id: z.string().uuid() });

const tenantsOf = (memberships: Membership[]) =>
  memberships.map((m) => ({ id: m.tenantId, name: m.tenantName, slug: m.tenantSlug, role: m.role }));

/** Auth, the caller, the tenant and its users, sites, spaces, API keys and the webhook secret under /api/v1. */
export function addV5CoreRoutes(api: ApiRoutes, deps: V5CoreDeps): void {
  api.add({
    method: 'post',
    path: '/auth/login',
    operationId: 'v5Login',
    summary: 'v5 login (email + password)',
    tag: 'v5',
    access: null,
    body: z.object({ email: z.string().email().max(320), password: z.string().min(1).max(1024) }),
    status: 200,
    response: body,
    handler: async ({ body: input, requestId }) => {
      const session = await deps.sessions.login(input, requestId);
      const { userId } = await deps.tokens.verify(session.accessToken);
      const tenantId = session.tenantId;
      const membership = session.memberships.find((m) => m.tenantId === tenantId);
      const user =
        tenantId && membership
          ? userV5(
              await withTenant(deps.pool, tenantId, (db) => getUser(db, tenantId, userId), { requestId }),
            )
          : { id: userId, email: input.email.toLowerCase() };
      return {
        access_token: session.accessToken,
        refresh_token: session.refreshToken ?? '',
        token_type: 'bearer',
        expires_in: session.expiresIn,
        refresh_expires_in: deps.refreshTokenTtlS,
        user,
        tenants: tenantsOf(session.memberships),
      };
    },
  });
  api.add({
    method: 'post',
    path: '/auth/register',
    operationId: 'v5Register',
    summary: 'v5 register a tenant and its owner; returns a JWT',
    tag: 'v5',
    access: null,
    body: z.object({
      tenant_name: z.string().trim().min(1).max(200),
      email: z.string().email().max(320),
      password: z.string().min(minPasswordLength).max(1024),
      name: z.string().trim().min(1).max(200).optional(),
    }),
    status: 201,
    response: body,
    handler: async ({ body: input, requestId }) => {
      const { tenantId, userId } = await registerTenant(
        deps.pool,
        { tenantName: input.tenant_name, email: input.email, password: input.password, name: input.name },
        requestId,
      );
      const session = await deps.sessions.login(
        { email: input.email, password: input.password, tenantId },
        requestId,
      );
      const { tenant, user } = await withTenant(
        deps.pool,
        tenantId,
        async (db) => ({ tenant: await getTenant(db, tenantId), user: await getUser(db, tenantId, userId) }),
        { actor: { type: 'user', id: userId }, requestId },
      );
      return {
        tenant: tenantV5(tenant),
        user: userV5(user),
        access_token: session.accessToken,
        token_type: 'bearer',
        expires_in: session.expiresIn,
      };
    },
  });
  api.add({
    method: 'post',
    path: '/auth/refresh',
    operationId: 'v5Refresh',
    summary: 'v5 refresh (rotation; reuse revokes the family)',
    tag: 'v5',
    access: null,
    body: z.object({ refresh_token: z.string().min(1).max(200) }),
    status: 200,
    response: body,
    handler: async ({ body: input, requestId }) => {
      const session = await deps.sessions.refresh(input.refresh_token, requestId);
      return {
        access_token: session.accessToken,
        refresh_token: session.refreshToken ?? '',
        token_type: 'bearer',
        expires_in: session.expiresIn,
        refresh_expires_in: deps.refreshTokenTtlS,
      };
    },
  });
  api.add({
    method: 'get',
    path: '/me',
    operationId: 'v5Me',
    summary: 'v5 profile of the calling user',
    tag: 'v5',
    access: viewer,
    status: 200,
    response: body,
    handler: async ({ principal, read }) => {
      if (principal.kind === 'api_key')
        throw new PlatformError('NOT_FOUND', 'an API key has no user profile');
      const memberships = await userMemberships(deps.pool, principal.userId);
      const tenant = await read((db, tenantId) => getTenant(db, tenantId));
      const user = await read((db, tenantId) => getUser(db, tenantId, principal.userId)).catch(() => null);
      return {
        user: user ? userProfileV5(user) : { id: principal.userId },
        current_tenant: {
          id: tenant.id,
          name: tenant.name,
          slug: tenant.slug,
          ...(principal.kind === 'member' ? { role: principal.role } : {}),
        },
        all_tenants: tenantsOf(memberships),
      };
    },
  });
  api.add({
    method: 'get',
    path: '/me/limits',
    operationId: 'v5MeLimits',
    summary: 'v5 rate limits, quotas and usage of the tenant',
    tag: 'v5',
    access: viewer,
    status: 200,
    response: body,
    handler: async ({ read, res }) => {
      const { tenant, usage } = await read(async (db, tenantId) => ({
        tenant: await getTenant(db, tenantId),
        usage: await tenantUsage(db, tenantId),
      }));
      const perMinute = (n: number) => Math.floor((n * 60) / deps.limits.windowS);
      const state = res.locals.rateLimit;
      return {
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        rate_limits: {
          requests_per_minute: perMinute(deps.limits.perUser),
          api_key_requests_per_minute: perMinute(deps.limits.perApiKey),
          ip_requests_per_minute: perMinute(deps.limits.perIp),
          // The caller's window now (after counting this request); null when no limiter runs.
          current: state
            ? {
                bucket: state.bucket,
                limit: state.limit,
                remaining: state.remaining,
                reset_seconds: state.resetS,
                window_seconds: deps.limits.windowS,
              }
            : null,
        },
        quotas: tenant.limits,
        usage: { ...usage, total_devices: usage.sensor_devices + usage.display_devices },
      };
    },
  });
  api.add({
    method: 'get',
    path: '/tenants/current',
    operationId: 'v5GetTenant',
    summary: 'v5 current tenant',
    tag: 'v5',
    access: viewer,
    status: 200,
    response: body,
    handler: async ({ read }) => tenantV5(await read((db, tenantId) => getTenant(db, tenantId))),
  });
  api.add({
    method: 'patch',
    path: '/tenants/current',
    operationId: 'v5UpdateTenant',
    summary: 'v5 update current tenant (name, settings)',
    tag: 'v5',
    access: adminWrite,
    body: z
      .object({ name: z.string().trim().min(1).max(200), settings: z.record(z.unknown()) })
      .partial()
      .strict(),
    status: 200,
    response: body,
    handler: async ({ body: input, write }) =>
      tenantV5(await write((db, tenantId) => updateTenant(db, tenantId, input))),
  });
  api.add({
    method: 'get',
    path: '/users',
    operationId: 'v5ListUsers',
    summary: 'v5 users of the tenant',
    tag: 'v5',
    access: admin,
    query: v5ListQuery,
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(query.sort, { email: 'email', name: 'name', created_at: 'createdAt' }, 'email');
      const rows = await read((db, tenantId) => listUsers(db, tenantId, { ...query, sort }));
      return v5Page(rows, query, sort, userV5);
    },
  });

  // ------------------------------------------------------------------------------------------------- sites
  api.add({
    method: 'get',
    path: '/sites',
    operationId: 'v5ListSites',
    summary: 'v5 list sites',
    tag: 'v5',
    access: viewer,
    query: v5ListQuery,
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(query.sort, { name: 'name', created_at: 'createdAt' }, 'name');
      const rows = await read((db, tenantId) => listSites(db, tenantId, { ...query, sort }));
      return v5Page(rows, query, sort, siteV5);
    },
  });
  api.add({
    method: 'post',
    path: '/sites',
    operationId: 'v5CreateSite',
    summary: 'v5 create site',
    tag: 'v5',
    access: spacesWrite,
    body: z.object(siteFields).partial().required({ name: true }),
    status: 201,
    response: body,
    handler: async ({ body: input, write }) =>
      siteV5(await write((db, tenantId) => createSite(db, tenantId, input))),
  });
  api.add({
    method: 'get',
    path: '/sites/:site_id',
    operationId: 'v5GetSite',
    summary: 'v5 get site',
    tag: 'v5',
    access: viewer,
    params: siteParams,
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      siteV5(await read((db, tenantId) => getSite(db, tenantId, params.site_id))),
  });
  api.add({
    method: 'patch',
    path: '/sites/:site_id',
    operationId: 'v5UpdateSite',
    summary: 'v5 update site',
    tag: 'v5',
    access: spacesWrite,
    params: siteParams,
    body: z.object(siteFields).partial(),
    status: 200,
    response: body,
    handler: async ({ params, body: input, write }) =>
      siteV5(await write((db, tenantId) => updateSite(db, tenantId, params.site_id, input))),
  });

  // ------------------------------------------------------------------------------------------------ spaces
  api.add({
    method: 'get',
    path: '/spaces/stats/summary',
    operationId: 'v5SpaceStats',
    summary: 'v5 space statistics (occupancy now, per site)',
    tag: 'v5',
    access: viewer,
    status: 200,
    response: body,
    handler: async ({ read }) => {
      const rows = await read((db, tenantId) => occupancyBySite(db, tenantId));
      const total = totalCounts(rows);
      return {
        total_spaces: total.spaces,
        ...total,
        occupancy_rate: occupancyRate(total),
        by_site: rows.map((r) => ({ ...r, occupancy_rate: occupancyRate(r) })),
      };
    },
  });
  api.add({
    method: 'get',
    path: '/spaces',
    operationId: 'v5ListSpaces',
    summary: 'v5 list spaces',
    tag: 'v5',
    access: viewer,
    query: v5ListQuery.extend({ site_id: z.string().uuid().optional() }),
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(query.sort, { code: 'code', name: 'name', created_at: 'createdAt' }, 'code');
      const rows = await read((db, tenantId) =>
        listSpaces(db, tenantId, { ...query, sort, siteId: query.site_id }),
      );
      return v5Page(rows, query, sort, spaceV5);
    },
  });
  api.add({
    method: 'get',
    path: '/spaces/:space_id',
    operationId: 'v5GetSpace',
    summary: 'v5 get space',
    tag: 'v5',
    access: viewer,
    params: spaceParams,
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      spaceV5(await read((db, tenantId) => getSpace(db, tenantId, params.space_id))),
  });
  api.add({
    method: 'patch',
    path: '/spaces/:space_id',
    operationId: 'v5UpdateSpace',
    summary: 'v5 update space',
    tag: 'v5',
    access: spacesWrite,
    params: spaceParams,
    body: z.object({
      code: spaceFields.code.optional(),
      name: spaceFields.name.optional(),
      site_id: spaceFields.siteId.optional(),
      floor: spaceFields.floor.optional(),
      zone: spaceFields.zone.optional(),
      metadata: spaceFields.metadata.optional(),
    }),
    status: 200,
    response: body,
    handler: async ({ params, body: input, write }) => {
      const { site_id, ...rest } = input;
      const fields = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
      const changes = site_id === undefined ? fields : { ...fields, siteId: site_id };
      return spaceV5(await write((db, tenantId) => updateSpace(db, tenantId, params.space_id, changes)));
    },
  });
  api.add({
    method: 'delete',
    path: '/spaces/:space_id',
    operationId: 'v5DeleteSpace',
    summary: 'v5 delete space (409 while devices are assigned)',
    tag: 'v5',
    access: spacesWrite,
    params: spaceParams,
    status: 204,
    response: body,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteSpace(db, tenantId, params.space_id));
      return undefined;
    },
  });
  for (const kind of ['sensor', 'display'] as const satisfies readonly DeviceKind[]) {
    const field = kind === 'sensor' ? 'sensor_eui' : 'display_eui';
    api.add({
      method: 'post',
      path: `/spaces/:space_id/assign-${kind}`,
      operationId: `v5Assign${kind}`,
      summary: `v5 assign a ${kind} (registered on the fly when the tenant does not have it yet)`,
      tag: 'v5',
      access: devicesWrite,
      params: spaceParams,
      query: z.object({ [field]: eui }),
      status: 200,
      response: body,
      handler: async ({ params, query, write }) => {
        const devEui = String(query[field]).toUpperCase();
        return spaceV5(
          await write(async (db, tenantId) => {
            await getSpace(db, tenantId, params.space_id);
            const known = await deviceKindOf(db, tenantId, devEui);
            if (known && known !== kind) throw new PlatformError('CONFLICT', `${devEui} is a ${known}`);
            if (!known) await registerDevice(db, tenantId, { devEui, kind });
            return assignDevice(db, tenantId, params.space_id, kind, devEui);
          }),
        );
      },
    });
    api.add({
      method: 'delete',
      path: `/spaces/:space_id/unassign-${kind}`,
      operationId: `v5Unassign${kind}`,
      summary: `v5 unassign the space's ${kind}`,
      tag: 'v5',
      access: devicesWrite,
      params: spaceParams,
      status: 200,
      response: body,
      handler: async ({ params, write }) =>
        spaceV5(await write((db, tenantId) => unassignDevice(db, tenantId, params.space_id, kind))),
    });
  }

  // -------------------------------------------------------------------------------- API keys, webhook secret
  api.add({
    method: 'get',
    path: '/api-keys',
    operationId: 'v5ListApiKeys',
    summary: 'v5 list API keys',
    tag: 'v5',
    access: admin,
    query: v5ListQuery,
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(query.sort, { created_at: 'createdAt', name: 'name' }, '-createdAt');
      const rows = await read((db, tenantId) => listApiKeys(db, tenantId, { ...query, sort, status: 'all' }));
      return v5Page(rows, query, sort, apiKeyV5);
    },
  });
  api.add({
    method: 'post',
    path: '/api-keys',
    operationId: 'v5CreateApiKey',
    summary: 'v5 create API key (the key is shown once)',
    tag: 'v5',
    access: adminWrite,
    body: z.object({
      name: z.string().trim().min(1).max(200),
      scopes: z.array(z.enum(scopes)).min(1).max(scopes.length).default(['spaces:read']),
      expires_at: z.string().datetime({ offset: true }).optional(),
    }),
    status: 201,
    response: body,
    handler: async ({ body: input, write, principal }) => {
      const createdBy = principal.kind === 'member' ? principal.userId : null;
      const { row, key } = await write((db, tenantId) =>
        createApiKey(db, tenantId, {
          name: input.name,
          scopes: input.scopes,
          expiresAt: input.expires_at,
          createdBy,
        }),
      );
      return { ...apiKeyV5(row), key };
    },
  });
  api.add({
    method: 'delete',
    path: '/api-keys/:key_id',
    operationId: 'v5RevokeApiKey',
    summary: 'v5 revoke API key',
    tag: 'v5',
    access: adminWrite,
    params: z.object({ key_id: z.string().uuid() }),
    status: 200,
    response: body,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => revokeApiKey(db, tenantId, params.key_id));
      return { id: params.key_id, revoked: true };
    },
  });
  api.add({
    method: 'post',
    path: '/webhook-secret',
    operationId: 'v5CreateWebhookSecret',
    summary: 'v5 create the webhook secret (shown once; 409 when one exists)',
    tag: 'v5',
    access: webhooks,
    status: 201,
    response: body,
    handler: async ({ write }) => {
      const { row, secret } = await write((db, tenantId) => createWebhookSecret(db, tenantId));
      return webhookSecretV5(row, secret);
    },
  });
  api.add({
    method: 'post',
    path: '/webhook-secret/rotate',
    operationId: 'v5RotateWebhookSecret',
    summary: 'v5 rotate the webhook secret (the previous one stays valid for a while)',
    tag: 'v5',
    access: webhooks,
    status: 200,
    response: body,
    handler: async ({ write }) => {
      const { row, secret } = await write((db, tenantId) => rotateWebhookSecret(db, tenantId));
      return webhookSecretV5(row, secret);
    },
  });
}
