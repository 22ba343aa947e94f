import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import { roles } from '../auth/principal.js';
import { healthSummary } from '../services/health.js';
import { occupancyBySite, occupancyRate, totalCounts, type Counts } from '../services/occupancy.js';

const counts = {
  spaces: z.number().int(),
  occupied: z.number().int(),
  free: z.number().int(),
  reserved: z.number().int(),
  maintenance: z.number().int(),
  unknown: z.number().int(),
  occupancyRate: z
    .number()
    .nullable()
    .openapi({ description: 'occupied / (occupied + free); null when no space reports' }),
};

const siteOccupancy = z
  .object({ siteId: z.string().uuid().nullable(), siteName: z.string().nullable(), ...counts })
  .openapi('SiteOccupancy');

const alert = z
  .object({
    alertId: z.string().uuid(),
    kind: z.enum(['device', 'gateway']),
    entityId: z.string().openapi({ description: 'DevEUI or gateway id' }),
    raisedAt: z.string().datetime(),
    lastHeardAt: z.string().datetime(),
  })
  .openapi('LivenessAlert');

const health = z
  .object({
    sensors: z.object({
      total: z.number().int().openapi({ description: 'not decommissioned' }),
      active: z.number().int(),
      heard24h: z.number().int().openapi({ description: 'an uplink in the last 24 hours' }),
      silent: z.number().int().openapi({ description: 'with an open liveness alert' }),
    }),
    displays: z.object({ total: z.number().int(), active: z.number().int(), silent: z.number().int() }),
    gateways: z.object({
      total: z.number().int(),
      online: z.number().int().openapi({ description: 'heard within the online window (10 min)' }),
      silent: z.number().int().openapi({ description: 'with an open liveness alert' }),
    }),
  })
  .openapi('DeviceHealth');

export const summarySchema = z
  .object({
    generatedAt: z.string().datetime(),
    totals: z.object(counts),
    sites: z.array(siteOccupancy).openapi({ description: 'per site; siteId null for spaces without a site' }),
    health,
    alerts: z.object({
      open: z.number().int().openapi({ description: 'open liveness alerts in total' }),
      latest: z.array(alert).openapi({ description: 'the 10 most recently raised open alerts' }),
    }),
  })
  .openapi('DashboardSummary');

function withRate(c: Counts) {
  return {
    spaces: c.spaces,
    occupied: c.occupied,
    free: c.free,
    reserved: c.reserved,
    maintenance: c.maintenance,
    unknown: c.unknown,
    occupancyRate: occupancyRate(c),
  };
}

export const meSchema = z
  .object({
    kind: z.enum(['member', 'platform_admin', 'api_key']),
    tenantId: z.string().uuid(),
    userId: z.string().uuid().nullable(),
    role: z.enum(roles).nullable(),
    apiKeyId: z.string().uuid().nullable(),
    scopes: z.array(z.string()).nullable(),
  })
  .openapi('Me');

/** The dashboard summary (occupancy now, per site) and who the caller is. */
export function addDashboardRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/dashboard/summary',
    operationId: 'dashboardSummary',
    summary: 'Occupancy now (per site and in total), device and gateway health, open alerts',
    tag: 'dashboard',
    access: { role: 'viewer', scope: 'spaces:read', write: false },
    status: 200,
    response: summarySchema,
    handler: async ({ read }) => {
      const { rows, deviceHealth } = await read(async (db, tenantId) => ({
        rows: await occupancyBySite(db, tenantId),
        deviceHealth: await healthSummary(db, tenantId),
      }));
      const total = totalCounts(rows);
      return {
        generatedAt: new Date().toISOString(),
        totals: withRate(total),
        sites: rows.map((r) => ({ siteId: r.site_id, siteName: r.site_name, ...withRate(r) })),
        health: {
          sensors: deviceHealth.sensors,
          displays: deviceHealth.displays,
          gateways: deviceHealth.gateways,
        },
        alerts: {
          open: deviceHealth.openAlertCount,
          latest: deviceHealth.openAlerts.map((a) => ({
            alertId: a.alert_id,
            kind: a.kind,
            entityId: a.entity_id,
            raisedAt: a.raised_at.toISOString(),
            lastHeardAt: a.last_heard_at.toISOString(),
          })),
        },
      };
    },
  });
  api.add({
    method: 'get',
    path: '/me',
    operationId: 'me',
    summary: 'The caller: user or API key, selected tenant, role or scopes',
    tag: 'auth',
    access: { role: 'viewer', scope: 'spaces:read', write: false },
    status: 200,
    response: meSchema,
    handler: async ({ principal: p }) => ({
      kind: p.kind,
      tenantId: p.tenantId,
      userId: p.kind === 'api_key' ? null : p.userId,
      role: p.kind === 'member' ? p.role : null,
      apiKeyId: p.kind === 'api_key' ? p.keyId : null,
      scopes: p.kind === 'api_key' ? p.scopes : null,
    }),
  });
}
