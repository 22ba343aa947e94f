import type { RateLimits } from '../http/rate-limit.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import { getTenant, tenantUsage } from '../services/tenants.js';

const windowState = z
  .object({
    bucket: z.enum(['user', 'api_key']),
    limit: z.number().int(),
    remaining: z.number().int().openapi({ description: 'after counting this request' }),
    resetS: z.number().int().openapi({ description: 'seconds until the window ends' }),
  })
  .openapi('RateLimitState');

const limitsSchema = z
  .object({
    windowS: z.number().int(),
    perUser: z.number().int(),
    perApiKey: z.number().int(),
    perIp: z.number().int(),
    current: windowState
      .nullable()
      .openapi({ description: "the caller's window now; null without a limiter" }),
    quotas: z.record(z.unknown()),
    usage: z.object({
      spaces: z.number().int(),
      sites: z.number().int(),
      sensorDevices: z.number().int(),
      displayDevices: z.number().int(),
      activeReservations: z.number().int(),
    }),
  })
  .openapi('Limits');

/** The caller's rate limits and where it stands in the current window, with the tenant's quotas and usage. */
export function addLimitRoutes(api: ApiRoutes, limits: RateLimits): void {
  api.add({
    method: 'get',
    path: '/me/limits',
    operationId: 'getLimits',
    summary: "Rate limits, the caller's state in the current window, quotas and usage",
    tag: 'me',
    access: { role: 'viewer', scope: 'spaces:read', write: false },
    status: 200,
    response: limitsSchema,
    handler: async ({ read, res }) => {
      const { tenant, usage } = await read(async (db, tenantId) => ({
        tenant: await getTenant(db, tenantId),
        usage: await tenantUsage(db, tenantId),
      }));
      const state = res.locals.rateLimit;
      return {
        windowS: limits.windowS,
        perUser: limits.perUser,
        perApiKey: limits.perApiKey,
        perIp: limits.perIp,
        current: state
          ? { bucket: state.bucket, limit: state.limit, remaining: state.remaining, resetS: state.resetS }
          : null,
        quotas: tenant.limits,
        usage: {
          spaces: usage.spaces,
          sites: usage.sites,
          sensorDevices: usage.sensor_devices,
          displayDevices: usage.display_devices,
          activeReservations: usage.active_reservations,
        },
      };
    },
  });
}
