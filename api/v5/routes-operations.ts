import { randomUUID } from 'node:crypto';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  adoptOrphan,
  archiveDevice,
  deleteOrphan,
  gatewaySummary,
  getDevice,
  getGateway,
  listDevices,
  listDeviceTypes,
  listGateways,
  listOrphans,
  updateDevice,
} from '../services/devices.js';
import {
  clearOverride,
  computedState,
  createOverride,
  createPolicy,
  getPolicy,
  listPolicies,
  overrideStates,
  updatePolicy,
} from '../services/displays.js';
import { queueHealthy, queueMetrics, resetQueueMetrics } from '../services/downlinks.js';
import {
  cancelReservation,
  createReservation,
  getReservation,
  listReservations,
} from '../services/reservations.js';
import { assignDevice } from '../services/spaces.js';
import { v5ListQuery, v5Page, v5Sort } from './paging.js';
import { deviceTypeV5, deviceV5, gatewayV5, orphanV5, overrideV5, policyV5, reservationV5 } from './views.js';

const body = z.unknown();
const eui = z
  .string()
  .regex(/^[0-9A-Fa-f]{16}$/, 'an EUI is 16 hex digits')
  .transform((v) => v.toUpperCase());
const reservationsRead = { role: 'viewer', scope: 'reservations:read', write: false } as const;
const reservationsWrite = { role: 'operator', scope: 'reservations:write', write: true } as const;
const devicesRead = { role: 'viewer', scope: 'devices:read', write: false } as const;
const devicesWrite = { role: 'admin', scope: 'devices:write', write: true } as const;
const displaysWrite = { role: 'admin', scope: 'displays:write', write: true } as const;
const overridesWrite = { role: 'operator', scope: 'displays:write', write: true } as const;
const gatewaysRead = { role: 'viewer', scope: 'gateways:read', write: false } as const;
/** Unpaged v5 lists (orphans, gateways) answer at most this many rows. */
const unpagedLimit = 1000;

/** Reservations, devices and orphans, display policies and overrides, the downlink queue, gateways. */
export function addV5OperationRoutes(api: ApiRoutes): void {
  // ------------------------------------------------------------------------------------------ reservations
  api.add({
    method: 'get',
    path: '/reservations',
    operationId: 'v5ListReservations',
    summary: 'v5 list reservations',
    tag: 'v5',
    access: reservationsRead,
    query: v5ListQuery.extend({
      space_id: z.string().uuid().optional(),
      status: z.enum(['pending', 'confirmed', 'expired', 'cancelled']).optional(),
    }),
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(query.sort, { reserved_from: 'startsAt', created_at: 'createdAt' }, '-startsAt');
      const rows = await read((db, tenantId) =>
        listReservations(db, tenantId, {
          ...query,
          sort,
          spaceId: query.space_id,
          // v5's `expired` includes the no-shows (reservationV5 shows them as expired).
          status: query.status === 'expired' ? ['expired', 'no_show'] : query.status,
        }),
      );
      return v5Page(rows, query, sort, reservationV5);
    },
  });
  api.add({
    method: 'post',
    path: '/reservations',
    operationId: 'v5CreateReservation',
    summary: 'v5 create reservation (idempotent by request_id: a replay answers 200)',
    tag: 'v5',
    access: reservationsWrite,
    body: z.object({
      space_id: z.string().uuid(),
      reserved_from: z.string().datetime({ offset: true }),
      reserved_until: z.string().datetime({ offset: true }),
      user_email: z.string().email().max(320).nullable().optional(),
      user_phone: z.string().max(40).nullable().optional(),
      request_id: z.string().min(1).max(128).optional(),
    }),
    status: 201,
    otherStatuses: [200],
    response: body,
    handler: async ({ body: input, write, principal, req, setStatus }) => {
      const requestId = input.request_id ?? req.get('idempotency-key') ?? randomUUID();
      const { row, replayed } = await write((db, tenantId) =>
        createReservation(db, tenantId, {
          spaceId: input.space_id,
          startsAt: input.reserved_from,
          endsAt: input.reserved_until,
          userId: principal.kind === 'member' ? principal.userId : null,
          userEmail: input.user_email,
          userPhone: input.user_phone,
          requestId,
        }),
      );
      if (replayed) setStatus(200);
      return reservationV5(row);
    },
  });
  const reservationParams = z.object({ reservation_id: z.string().uuid() });
  api.add({
    method: 'get',
    path: '/reservations/:reservation_id',
    operationId: 'v5GetReservation',
    summary: 'v5 get reservation',
    tag: 'v5',
    access: reservationsRead,
    params: reservationParams,
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      reservationV5(await read((db, tenantId) => getReservation(db, tenantId, params.reservation_id))),
  });
  api.add({
    method: 'delete',
    path: '/reservations/:reservation_id',
    operationId: 'v5CancelReservation',
    summary: 'v5 cancel reservation',
    tag: 'v5',
    access: reservationsWrite,
    params: reservationParams,
    status: 200,
    response: body,
    handler: async ({ params, write }) =>
      reservationV5(await write((db, tenantId) => cancelReservation(db, tenantId, params.reservation_id))),
  });

  // ----------------------------------------------------------------------------------------------- devices
  api.add({
    method: 'get',
    path: '/devices/device-types',
    operationId: 'v5DeviceTypes',
    summary: 'v5 device types',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    response: body,
    handler: async ({ read }) => ({ items: (await read((db) => listDeviceTypes(db))).map(deviceTypeV5) }),
  });
  api.add({
    method: 'get',
    path: '/devices/full-metadata',
    operationId: 'v5DevicesFullMetadata',
    summary: 'v5 every device with its space, site and type',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    response: body,
    handler: async ({ read }) => {
      const rows = await read((db, tenantId) =>
        listDevices(db, tenantId, { limit: unpagedLimit, sort: 'devEui', includeArchived: true }),
      );
      return { items: rows.slice(0, unpagedLimit).map(deviceV5), truncated: rows.length > unpagedLimit };
    },
  });
  api.add({
    method: 'get',
    path: '/devices',
    operationId: 'v5ListDevices',
    summary: 'v5 list devices (sensors and displays)',
    tag: 'v5',
    access: devicesRead,
    query: v5ListQuery.extend({ device_type: z.enum(['sensor', 'display']).optional() }),
    status: 200,
    response: body,
    handler: async ({ query, read }) => {
      const sort = v5Sort(
        query.sort,
        { dev_eui: 'devEui', created_at: 'createdAt', last_seen_at: 'lastSeenAt' },
        'devEui',
      );
      const rows = await read((db, tenantId) =>
        listDevices(db, tenantId, { ...query, sort, kind: query.device_type }),
      );
      return v5Page(rows, query, sort, deviceV5);
    },
  });
  const deviceParams = z.object({ deveui: eui });
  api.add({
    method: 'get',
    path: '/devices/:deveui',
    operationId: 'v5GetDevice',
    summary: 'v5 get device',
    tag: 'v5',
    access: devicesRead,
    params: deviceParams,
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      deviceV5(await read((db, tenantId) => getDevice(db, tenantId, params.deveui))),
  });
  api.add({
    method: 'put',
    path: '/devices/:deveui',
    operationId: 'v5UpdateDevice',
    summary: 'v5 update device (name, device_model, status)',
    tag: 'v5',
    access: devicesWrite,
    params: deviceParams,
    body: z.object({
      name: z.string().max(200).nullable().optional(),
      device_model: z.string().max(64).nullable().optional(),
      status: z.enum(['active', 'inactive', 'decommissioned']).optional(),
    }),
    status: 200,
    response: body,
    handler: async ({ params, body: input, write }) =>
      deviceV5(
        await write((db, tenantId) =>
          updateDevice(db, tenantId, params.deveui, {
            ...('name' in input ? { name: input.name } : {}),
            ...('device_model' in input ? { deviceType: input.device_model } : {}),
            status: input.status,
          }),
        ),
      ),
  });
  api.add({
    method: 'patch',
    path: '/devices/:deveui/archive',
    operationId: 'v5ArchiveDevice',
    summary: 'v5 archive device',
    tag: 'v5',
    access: devicesWrite,
    params: deviceParams,
    status: 200,
    response: body,
    handler: async ({ params, write }) =>
      deviceV5(await write((db, tenantId) => archiveDevice(db, tenantId, params.deveui))),
  });

  // ------------------------------------------------------------------------------------------------ orphans
  api.add({
    method: 'get',
    path: '/orphan-devices',
    operationId: 'v5ListOrphans',
    summary: 'v5 orphan devices',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    response: body,
    handler: async ({ read }) => ({
      items: (await read((db, tenantId) => listOrphans(db, tenantId, unpagedLimit))).map(orphanV5),
    }),
  });
  const orphanParams = z.object({ device_eui: eui });
  api.add({
    method: 'post',
    path: '/orphan-devices/:device_eui/assign',
    operationId: 'v5AssignOrphan',
    summary: 'v5 register an orphan, optionally assigning it to a space',
    tag: 'v5',
    access: devicesWrite,
    params: orphanParams,
    body: z.object({
      space_id: z.string().uuid().optional(),
      device_type: z.enum(['sensor', 'display']).default('sensor'),
      device_model: z.string().max(64).optional(),
      codec: z.string().max(64).optional(),
    }),
    status: 200,
    response: body,
    handler: async ({ params, body: input, write }) =>
      deviceV5(
        await write(async (db, tenantId) => {
          const device = await adoptOrphan(db, tenantId, {
            devEui: params.device_eui,
            kind: input.device_type,
            codec: input.codec,
            deviceType: input.device_model,
          });
          if (!input.space_id) return device;
          await assignDevice(db, tenantId, input.space_id, input.device_type, device.dev_eui);
          return getDevice(db, tenantId, device.dev_eui);
        }),
      ),
  });
  api.add({
    method: 'delete',
    path: '/orphan-devices/:device_eui',
    operationId: 'v5DeleteOrphan',
    summary: 'v5 forget an orphan device',
    tag: 'v5',
    access: devicesWrite,
    params: orphanParams,
    status: 204,
    response: body,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteOrphan(db, tenantId, params.device_eui));
      return undefined;
    },
  });

  // ------------------------------------------------------------------------------------- display policies
  api.add({
    method: 'get',
    path: '/display-policies',
    operationId: 'v5ListPolicies',
    summary: 'v5 display policies',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    response: body,
    handler: async ({ read }) => {
      const rows = await read((db, tenantId) => listPolicies(db, tenantId));
      return { items: rows.map(policyV5), active_policy_id: rows.find((r) => r.is_active)?.id ?? null };
    },
  });
  const codes = z.record(z.unknown());
  api.add({
    method: 'post',
    path: '/display-policies',
    operationId: 'v5CreatePolicy',
    summary: 'v5 create display policy',
    tag: 'v5',
    access: displaysWrite,
    body: z.object({
      policy_name: z.string().trim().min(1).max(200),
      display_codes: codes,
      is_active: z.boolean().default(false),
    }),
    status: 201,
    response: body,
    handler: async ({ body: input, write }) =>
      policyV5(
        await write((db, tenantId) =>
          createPolicy(db, tenantId, {
            name: input.policy_name,
            displayCodes: input.display_codes,
            active: input.is_active,
          }),
        ),
      ),
  });
  api.add({
    method: 'post',
    path: '/display-policies/admin-overrides',
    operationId: 'v5CreateOverride',
    summary: 'v5 force a space display until it expires',
    tag: 'v5',
    access: overridesWrite,
    body: z
      .object({
        space_id: z.string().uuid(),
        display_state: z.enum(overrideStates),
        reason: z.string().max(500).nullable().optional(),
        expires_at: z.string().datetime({ offset: true }).optional(),
        duration_minutes: z
          .number()
          .int()
          .min(1)
          .max(7 * 24 * 60)
          .optional(),
      })
      .refine((b) => b.expires_at || b.duration_minutes, 'give expires_at or duration_minutes'),
    status: 201,
    response: body,
    handler: async ({ body: input, write, principal }) => {
      const expiresAt =
        input.expires_at ?? new Date(Date.now() + (input.duration_minutes ?? 0) * 60_000).toISOString();
      return overrideV5(
        await write((db, tenantId) =>
          createOverride(db, tenantId, {
            spaceId: input.space_id,
            state: input.display_state,
            reason: input.reason,
            expiresAt,
            createdBy: principal.kind === 'member' ? principal.userId : null,
          }),
        ),
      );
    },
  });
  api.add({
    method: 'delete',
    path: '/display-policies/admin-overrides/:override_id',
    operationId: 'v5ClearOverride',
    summary: 'v5 clear an admin override',
    tag: 'v5',
    access: overridesWrite,
    params: z.object({ override_id: z.string().uuid() }),
    status: 204,
    response: body,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => clearOverride(db, tenantId, params.override_id));
      return undefined;
    },
  });
  api.add({
    method: 'get',
    path: '/display-policies/spaces/:space_id/computed-state',
    operationId: 'v5ComputedState',
    summary: "v5 what the space's display must show now, and why",
    tag: 'v5',
    access: devicesRead,
    params: z.object({ space_id: z.string().uuid() }),
    status: 200,
    response: body,
    handler: async ({ params, read }) => {
      const c = await read((db, tenantId) => computedState(db, tenantId, params.space_id));
      return {
        space_id: c.spaceId,
        display_eui: c.displayDevEui,
        display_state: c.kind,
        reason: c.reason,
        display_code: c.displayCode,
        active_policy_id: c.activePolicyId,
        override_id: c.overrideId,
      };
    },
  });
  const policyParams = z.object({ policy_id: z.string().uuid() });
  api.add({
    method: 'get',
    path: '/display-policies/:policy_id',
    operationId: 'v5GetPolicy',
    summary: 'v5 get display policy',
    tag: 'v5',
    access: devicesRead,
    params: policyParams,
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      policyV5(await read((db, tenantId) => getPolicy(db, tenantId, params.policy_id))),
  });
  api.add({
    method: 'patch',
    path: '/display-policies/:policy_id',
    operationId: 'v5UpdatePolicy',
    summary: 'v5 update display policy (is_active: true activates it)',
    tag: 'v5',
    access: displaysWrite,
    params: policyParams,
    body: z.object({
      policy_name: z.string().trim().min(1).max(200).optional(),
      display_codes: codes.optional(),
      is_active: z.boolean().optional(),
    }),
    status: 200,
    response: body,
    handler: async ({ params, body: input, write }) =>
      policyV5(
        await write((db, tenantId) =>
          updatePolicy(db, tenantId, params.policy_id, {
            name: input.policy_name,
            displayCodes: input.display_codes,
            active: input.is_active,
          }),
        ),
      ),
  });

  // ----------------------------------------------------------------------------------------- downlink queue
  const metricsView = (m: Awaited<ReturnType<typeof queueMetrics>>) => ({
    since: m.since.toISOString(),
    jobs: m.jobs,
    outcomes: m.outcomes,
    oldest_queued_age_s: m.oldestQueuedAgeS,
  });
  api.add({
    method: 'get',
    path: '/downlinks/queue/metrics',
    operationId: 'v5QueueMetrics',
    summary: 'v5 downlink queue metrics of the tenant',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    response: body,
    handler: async ({ read }) => metricsView(await read((db, tenantId) => queueMetrics(db, tenantId))),
  });
  api.add({
    method: 'get',
    path: '/downlinks/queue/health',
    operationId: 'v5QueueHealth',
    summary: 'v5 downlink queue health (503 when a job waits too long)',
    tag: 'v5',
    access: devicesRead,
    status: 200,
    otherStatuses: [503],
    response: body,
    handler: async ({ read, setStatus }) => {
      const metrics = await read((db, tenantId) => queueMetrics(db, tenantId));
      const healthy = queueHealthy(metrics);
      if (!healthy) setStatus(503);
      return { status: healthy ? 'healthy' : 'unhealthy', ...metricsView(metrics) };
    },
  });
  api.add({
    method: 'post',
    path: '/downlinks/queue/clear-metrics',
    operationId: 'v5ClearQueueMetrics',
    summary: "v5 restart the tenant's downlink outcome counts from now",
    tag: 'v5',
    access: displaysWrite,
    status: 200,
    response: body,
    handler: async ({ write }) => ({
      cleared: true,
      since: (await write((db, tenantId) => resetQueueMetrics(db, tenantId))).toISOString(),
    }),
  });

  // ----------------------------------------------------------------------------------------------- gateways
  api.add({
    method: 'get',
    path: '/gateways/stats/summary',
    operationId: 'v5GatewaySummary',
    summary: 'v5 gateway statistics',
    tag: 'v5',
    access: gatewaysRead,
    status: 200,
    response: body,
    handler: async ({ read }) => {
      const s = await read((db, tenantId) => gatewaySummary(db, tenantId));
      return { total: s.total, active: s.online, last_24h_rx: s.uplinks24h };
    },
  });
  api.add({
    method: 'get',
    path: '/gateways',
    operationId: 'v5ListGateways',
    summary: 'v5 list gateways',
    tag: 'v5',
    access: gatewaysRead,
    status: 200,
    response: body,
    handler: async ({ read }) => ({
      items: (await read((db, tenantId) => listGateways(db, tenantId, unpagedLimit))).map(gatewayV5),
    }),
  });
  api.add({
    method: 'get',
    path: '/gateways/:gw_eui',
    operationId: 'v5GetGateway',
    summary: 'v5 get gateway',
    tag: 'v5',
    access: gatewaysRead,
    params: z.object({ gw_eui: eui }),
    status: 200,
    response: body,
    handler: async ({ params, read }) =>
      gatewayV5(await read((db, tenantId) => getGateway(db, tenantId, params.gw_eui))),
  });
}
