import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  adoptOrphan,
  archiveDevice,
  deleteDevice,
  deleteGateway,
  deleteOrphan,
  getDevice,
  getGateway,
  latestDeviceStatus,
  gatewaySummary,
  listDevices,
  listDeviceTypes,
  pageGateways,
  pageOrphans,
  registerDevice,
  updateDevice,
  type DeviceRow,
  type DeviceStatusRow,
  type GatewayRow,
  type OrphanRow,
} from '../services/devices.js';
import { assignDevice } from '../services/spaces.js';

const deviceKinds = ['sensor', 'display'] as const;
const deviceStatuses = ['active', 'inactive', 'decommissioned'] as const;

export const devEuiSchema = z
  .string()
  .regex(/^[0-9A-Fa-f]{16}$/, 'a DevEUI is 16 hex digits')
  .transform((v) => v.toUpperCase());

export const deviceSchema = z
  .object({
    devEui: z.string(),
    kind: z.enum(deviceKinds),
    name: z.string().nullable(),
    deviceType: z.string().nullable(),
    status: z.enum(deviceStatuses),
    spaceId: z.string().uuid().nullable(),
    spaceCode: z.string().nullable(),
    siteId: z.string().uuid().nullable(),
    lastSeenAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
    archivedAt: z.string().datetime().nullable(),
  })
  .openapi('Device');

function deviceView(r: DeviceRow): z.infer<typeof deviceSchema> {
  return {
    devEui: r.dev_eui,
    kind: r.kind,
    name: r.name,
    deviceType: r.device_type,
    status: r.status,
    spaceId: r.space_id,
    spaceCode: r.space_code,
    siteId: r.site_id,
    lastSeenAt: r.last_seen_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    archivedAt: r.archived_at?.toISOString() ?? null,
  };
}

const deviceStatusSchema = z
  .object({
    at: z.string().datetime().openapi({ description: 'when the device answered (network time)' }),
    batteryPercent: z
      .number()
      .nullable()
      .openapi({ description: '0-100; null when externally powered or the device cannot measure it' }),
    marginDb: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'demodulation margin of its last uplink as the device measured it, dB' }),
    externalPower: z.boolean().nullable(),
  })
  .openapi('DeviceStatusReport');

const deviceDetailSchema = deviceSchema
  .extend({
    lastStatus: deviceStatusSchema
      .nullable()
      .openapi({ description: "the device's latest answer to a status request; null when none yet" }),
  })
  .openapi('DeviceDetail');

function deviceStatusView(r: DeviceStatusRow): z.infer<typeof deviceStatusSchema> {
  return {
    at: r.time.toISOString(),
    batteryPercent: r.battery_percent,
    marginDb: r.margin,
    externalPower: r.external_power,
  };
}

const deviceTypeSchema = z
  .object({
    typeCode: z.string(),
    category: z.enum(deviceKinds),
    name: z.string(),
    manufacturer: z.string(),
    model: z.string().nullable(),
    codec: z.string().nullable(),
    defaultFPort: z.number().int().nullable(),
  })
  .openapi('DeviceType');

const orphanSchema = z
  .object({
    devEui: z.string(),
    applicationId: z.string().nullable(),
    deviceName: z.string().nullable(),
    firstSeenAt: z.string().datetime(),
    lastSeenAt: z.string().datetime(),
    uplinkCount: z.number().int(),
    lastFPort: z.number().int().nullable(),
    lastRssi: z.number().nullable(),
    lastSnr: z.number().nullable(),
  })
  .openapi('OrphanDevice');

function orphanView(r: OrphanRow): z.infer<typeof orphanSchema> {
  return {
    devEui: r.dev_eui,
    applicationId: r.application_id,
    deviceName: r.device_name,
    firstSeenAt: r.first_seen_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    uplinkCount: Number(r.uplink_count),
    lastFPort: r.last_f_port,
    lastRssi: r.last_rssi,
    lastSnr: r.last_snr,
  };
}

const gatewaySchema = z
  .object({
    gwEui: z.string(),
    name: z.string(),
    siteId: z.string().uuid().nullable(),
    latitude: z.number().nullable(),
    longitude: z.number().nullable(),
    lastSeenAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
    online: z.boolean().openapi({ description: 'seen within the last 10 minutes' }),
  })
  .openapi('Gateway');

function gatewayView(r: GatewayRow): z.infer<typeof gatewaySchema> {
  return {
    gwEui: r.gw_eui,
    name: r.name,
    siteId: r.site_id,
    latitude: r.latitude,
    longitude: r.longitude,
    lastSeenAt: r.last_seen_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    online: r.online,
  };
}

const gatewayStatsSchema = z
  .object({
    total: z.number().int(),
    online: z.number().int(),
    offline: z.number().int(),
    uplinks24h: z.number().int(),
  })
  .openapi('GatewayStats');

const codec = z.string().trim().min(1).max(64);
const deviceType = z.string().trim().min(1).max(64);
const registerBody = z
  .object({
    devEui: devEuiSchema,
    kind: z.enum(deviceKinds),
    codec: codec.optional(),
    deviceType: deviceType.optional(),
  })
  .strict()
  .openapi('DeviceCreate');
const updateBody = z
  .object({
    name: z.string().trim().min(1).max(200).nullable(),
    deviceType: deviceType.nullable(),
    status: z.enum(['active', 'inactive'] as const).openapi({ description: 'archive to decommission' }),
  })
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('DeviceUpdate');
const adoptBody = z
  .object({
    kind: z.enum(deviceKinds),
    codec: codec.optional(),
    deviceType: deviceType.optional(),
    spaceId: z.string().uuid().optional().openapi({ description: 'assign the new device to this space' }),
  })
  .strict()
  .openapi('OrphanAdoption');
const deviceParams = z.object({ devEui: devEuiSchema });
const gatewayParams = z.object({
  gwEui: z
    .string()
    .regex(/^[0-9A-Fa-f]{16}$/, 'a gateway EUI is 16 hex digits')
    .transform((v) => v.toUpperCase()),
});
const deviceList = listQuery(['devEui', 'createdAt', 'lastSeenAt'], 'devEui').extend({
  kind: z.enum(deviceKinds).optional(),
  includeArchived: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});
const orphanList = listQuery(['lastSeenAt', 'devEui', 'firstSeenAt'], '-lastSeenAt');
const gatewayList = listQuery(['gwEui', 'name', 'lastSeenAt'], 'gwEui').extend({
  online: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true')),
  siteId: z.string().uuid().optional(),
});

const read = { role: 'viewer', scope: 'devices:read', write: false } as const;
const operate = { role: 'operator', scope: 'devices:write', write: true } as const;
const manage = { role: 'admin', scope: 'devices:write', write: true } as const;
const gateways = { role: 'viewer', scope: 'gateways:read', write: false } as const;

/**
 * Sensors and displays (one list, keyed by DevEUI), their lifecycle (register, update, archive), the device type
 * catalog, orphans (seen on the tenant's ChirpStack applications but not registered) and gateways.
 */
export function addDeviceRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/devices',
    operationId: 'listDevices',
    summary: 'List sensors and displays',
    tag: 'devices',
    access: read,
    query: deviceList,
    status: 200,
    response: pageOf(deviceSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listDevices(db, tenantId, query)), query, deviceView),
  });
  api.add({
    method: 'post',
    path: '/devices',
    operationId: 'registerDevice',
    summary: 'Register a sensor or display (a DevEUI registered anywhere: 409)',
    tag: 'devices',
    access: manage,
    body: registerBody,
    status: 201,
    response: deviceSchema,
    handler: async ({ body, write }) =>
      deviceView(await write((db, tenantId) => registerDevice(db, tenantId, body))),
  });
  api.add({
    method: 'get',
    path: '/devices/:devEui',
    operationId: 'getDevice',
    summary: 'Get a device',
    tag: 'devices',
    access: read,
    params: deviceParams,
    status: 200,
    response: deviceDetailSchema,
    handler: async ({ params, read }) =>
      read(async (db, tenantId) => {
        const device = deviceView(await getDevice(db, tenantId, params.devEui));
        const status = await latestDeviceStatus(db, tenantId, params.devEui);
        return { ...device, lastStatus: status === null ? null : deviceStatusView(status) };
      }),
  });
  api.add({
    method: 'patch',
    path: '/devices/:devEui',
    operationId: 'updateDevice',
    summary: 'Rename a device, change its type, or take it in or out of service',
    tag: 'devices',
    access: operate,
    params: deviceParams,
    body: updateBody,
    status: 200,
    response: deviceSchema,
    handler: async ({ params, body, write }) =>
      deviceView(await write((db, tenantId) => updateDevice(db, tenantId, params.devEui, body))),
  });
  api.add({
    method: 'delete',
    path: '/devices/:devEui',
    operationId: 'deleteDevice',
    summary:
      'Delete a device; the ChirpStack sync deletes it from ChirpStack too (a display with downlink jobs: 409, archive it)',
    tag: 'devices',
    access: manage,
    params: deviceParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteDevice(db, tenantId, params.devEui));
      return undefined;
    },
  });
  api.add({
    method: 'post',
    path: '/devices/:devEui/archive',
    operationId: 'archiveDevice',
    summary: 'Decommission a device for good: unassigned and archived (archiving twice is harmless)',
    tag: 'devices',
    access: manage,
    params: deviceParams,
    status: 200,
    response: deviceSchema,
    handler: async ({ params, write }) =>
      deviceView(await write((db, tenantId) => archiveDevice(db, tenantId, params.devEui))),
  });
  api.add({
    method: 'get',
    path: '/device-types',
    operationId: 'listDeviceTypes',
    summary: 'The platform device catalog',
    tag: 'devices',
    access: read,
    status: 200,
    response: z.object({ data: z.array(deviceTypeSchema) }),
    handler: async ({ read }) => ({
      data: (await read((db) => listDeviceTypes(db))).map((t) => ({
        typeCode: t.type_code,
        category: t.category,
        name: t.name,
        manufacturer: t.manufacturer,
        model: t.model,
        codec: t.codec,
        defaultFPort: t.default_f_port,
      })),
    }),
  });
  api.add({
    method: 'get',
    path: '/orphans',
    operationId: 'listOrphans',
    summary: "Devices seen on the tenant's ChirpStack applications but not registered",
    tag: 'devices',
    access: read,
    query: orphanList,
    status: 200,
    response: pageOf(orphanSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => pageOrphans(db, tenantId, query)), query, orphanView),
  });
  api.add({
    method: 'post',
    path: '/orphans/:devEui/adopt',
    operationId: 'adoptOrphan',
    summary: 'Register an orphan as a sensor or display, optionally assigning it to a space',
    tag: 'devices',
    access: manage,
    params: deviceParams,
    body: adoptBody,
    status: 201,
    response: deviceSchema,
    handler: async ({ params, body, write }) =>
      deviceView(
        await write(async (db, tenantId) => {
          const { spaceId, ...device } = body;
          const adopted = await adoptOrphan(db, tenantId, { ...device, devEui: params.devEui });
          if (!spaceId) return adopted;
          await assignDevice(db, tenantId, spaceId, body.kind, adopted.dev_eui);
          return getDevice(db, tenantId, adopted.dev_eui);
        }),
      ),
  });
  api.add({
    method: 'delete',
    path: '/orphans/:devEui',
    operationId: 'dismissOrphan',
    summary: 'Forget an orphan (it reappears when it sends again)',
    tag: 'devices',
    access: manage,
    params: deviceParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteOrphan(db, tenantId, params.devEui));
      return undefined;
    },
  });
  api.add({
    method: 'get',
    path: '/gateways',
    operationId: 'listGateways',
    summary: 'List gateways with their online status',
    tag: 'gateways',
    access: gateways,
    query: gatewayList,
    status: 200,
    response: pageOf(gatewaySchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => pageGateways(db, tenantId, query)), query, gatewayView),
  });
  api.add({
    method: 'get',
    path: '/gateways/stats',
    operationId: 'gatewayStats',
    summary: "Gateways in total, online and offline, and the tenant's uplinks in the last 24 hours",
    tag: 'gateways',
    access: gateways,
    status: 200,
    response: gatewayStatsSchema,
    handler: async ({ read }) => {
      const s = await read((db, tenantId) => gatewaySummary(db, tenantId));
      return { ...s, offline: s.total - s.online };
    },
  });
  api.add({
    method: 'get',
    path: '/gateways/:gwEui',
    operationId: 'getGateway',
    summary: 'Get a gateway',
    tag: 'gateways',
    access: gateways,
    params: gatewayParams,
    status: 200,
    response: gatewaySchema,
    handler: async ({ params, read }) =>
      gatewayView(await read((db, tenantId) => getGateway(db, tenantId, params.gwEui))),
  });
  api.add({
    method: 'delete',
    path: '/gateways/:gwEui',
    operationId: 'deleteGateway',
    summary: 'Delete a gateway; the ChirpStack sync deletes it from ChirpStack too',
    tag: 'gateways',
    access: manage,
    params: gatewayParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteGateway(db, tenantId, params.gwEui));
      return undefined;
    },
  });
}
