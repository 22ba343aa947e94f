import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  assignDevice,
  createSpace as insertSpace,
  deleteSpace,
  getSpace,
  listSpaces,
  spaceStates,
  unassignDevice,
  updateSpace as changeSpace,
  type SpaceRow,
} from '../services/spaces.js';

export const spaceSchema = z
  .object({
    id: z.string().uuid(),
    code: z.string(),
    name: z.string(),
    state: z.enum(spaceStates),
    stateSince: z.string().datetime().nullable(),
    lastEventTime: z.string().datetime().nullable(),
    siteId: z.string().uuid().nullable(),
    floor: z.string().nullable(),
    zone: z.string().nullable(),
    sensorDevEui: z.string().nullable().openapi({ description: 'the sensor assigned to the space' }),
    displayDevEui: z.string().nullable().openapi({ description: 'the display assigned to the space' }),
    metadata: z.record(z.unknown()),
    createdAt: z.string().datetime(),
  })
  .openapi('Space');

/** A space as the v6 API shows it (the console uses this type). Times are ISO 8601 UTC. */
export type SpaceView = z.infer<typeof spaceSchema>;

function toView(r: SpaceRow): SpaceView {
  return {
    id: r.id,
    code: r.code,
    name: r.name,
    state: r.state,
    stateSince: r.state_since?.toISOString() ?? null,
    lastEventTime: r.last_event_time?.toISOString() ?? null,
    siteId: r.site_id,
    floor: r.floor,
    zone: r.zone,
    sensorDevEui: r.sensor_dev_eui,
    displayDevEui: r.display_dev_eui,
    metadata: r.metadata,
    createdAt: r.created_at.toISOString(),
  };
}

export const spaceFields = {
  code: z.string().trim().min(1).max(64),
  name: z.string().trim().min(1).max(200),
  siteId: z.string().uuid().nullable(),
  floor: z.string().max(64).nullable(),
  zone: z.string().max(64).nullable(),
  metadata: z.record(z.unknown()),
};
const createSpace = z
  .object(spaceFields)
  .partial()
  .required({ code: true, name: true })
  .strict()
  .openapi('SpaceCreate');
const updateSpace = z
  .object(spaceFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('SpaceUpdate');
const spaceParams = z.object({ spaceId: z.string().uuid() });
const devEui = z
  .string()
  .regex(/^[0-9A-Fa-f]{16}$/, 'a DevEUI is 16 hex digits')
  .transform((v) => v.toUpperCase());
const assignBody = z.object({ devEui }).strict().openapi('DeviceAssignment');
const spaceList = listQuery(['code', 'name', 'createdAt'], 'code').extend({
  siteId: z.string().uuid().optional(),
  state: z.enum(spaceStates).optional(),
  q: z.string().max(100).optional().openapi({ description: 'case-insensitive substring of code or name' }),
});

const read = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const manage = { role: 'admin', scope: 'spaces:write', write: true } as const;
const assign = { role: 'operator', scope: 'devices:write', write: true } as const;

/** Spaces of the selected tenant, with their sensor and display assignment. */
export function addSpaceRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/spaces',
    operationId: 'listSpaces',
    summary: 'List spaces',
    tag: 'spaces',
    access: read,
    query: spaceList,
    status: 200,
    response: pageOf(spaceSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listSpaces(db, tenantId, query)), query, toView),
  });
  api.add({
    method: 'post',
    path: '/spaces',
    operationId: 'createSpace',
    summary: 'Create a space',
    tag: 'spaces',
    access: manage,
    body: createSpace,
    status: 201,
    response: spaceSchema,
    handler: async ({ body, write }) =>
      toView(await write((db, tenantId) => insertSpace(db, tenantId, body))),
  });
  api.add({
    method: 'get',
    path: '/spaces/:spaceId',
    operationId: 'getSpace',
    summary: 'Get a space',
    tag: 'spaces',
    access: read,
    params: spaceParams,
    status: 200,
    response: spaceSchema,
    handler: async ({ params, read }) =>
      toView(await read((db, tenantId) => getSpace(db, tenantId, params.spaceId))),
  });
  api.add({
    method: 'patch',
    path: '/spaces/:spaceId',
    operationId: 'updateSpace',
    summary: 'Update a space (only the fields given)',
    tag: 'spaces',
    access: manage,
    params: spaceParams,
    body: updateSpace,
    status: 200,
    response: spaceSchema,
    handler: async ({ params, body, write }) =>
      toView(await write((db, tenantId) => changeSpace(db, tenantId, params.spaceId, body))),
  });
  api.add({
    method: 'delete',
    path: '/spaces/:spaceId',
    operationId: 'deleteSpace',
    summary: 'Delete a space without assigned devices',
    tag: 'spaces',
    access: manage,
    params: spaceParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteSpace(db, tenantId, params.spaceId));
      return undefined;
    },
  });
  for (const kind of ['sensor', 'display'] as const) {
    api.add({
      method: 'put',
      path: `/spaces/:spaceId/${kind}`,
      operationId: `assign${kind === 'sensor' ? 'Sensor' : 'Display'}`,
      summary: `Assign a registered ${kind} to the space (moving it from another space if needed)`,
      tag: 'spaces',
      access: assign,
      params: spaceParams,
      body: assignBody,
      status: 200,
      response: spaceSchema,
      handler: async ({ params, body, write }) =>
        toView(await write((db, tenantId) => assignDevice(db, tenantId, params.spaceId, kind, body.devEui))),
    });
    api.add({
      method: 'delete',
      path: `/spaces/:spaceId/${kind}`,
      operationId: `unassign${kind === 'sensor' ? 'Sensor' : 'Display'}`,
      summary: `Unassign the space's ${kind}`,
      tag: 'spaces',
      access: assign,
      params: spaceParams,
      status: 204,
      handler: async ({ params, write }) => {
        await write((db, tenantId) => unassignDevice(db, tenantId, params.spaceId, kind));
        return undefined;
      },
    });
  }
}
