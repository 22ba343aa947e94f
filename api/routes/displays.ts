import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  clearOverride,
  computedState,
  createOverride,
  createPolicy,
  getPolicy,
  listActiveOverrides,
  listPolicies,
  overrideStates,
  updatePolicy,
  type OverrideRow,
  type PolicyRow,
} from '../services/displays.js';

const policySchema = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    active: z.boolean(),
    displayCodes: z.record(z.unknown()),
    createdAt: z.string().datetime(),
    activatedAt: z.string().datetime().nullable(),
    updatedAt: z.string().datetime(),
  })
  .openapi('DisplayPolicy');

function policyView(r: PolicyRow): z.infer<typeof policySchema> {
  return {
    id: r.id,
    name: r.name,
    active: r.is_active,
    displayCodes: r.display_codes,
    createdAt: r.created_at.toISOString(),
    activatedAt: r.activated_at?.toISOString() ?? null,
    updatedAt: r.updated_at.toISOString(),
  };
}

const overrideSchema = z
  .object({
    id: z.string().uuid(),
    spaceId: z.string().uuid(),
    state: z.enum(overrideStates),
    reason: z.string().nullable(),
    createdBy: z.string().nullable(),
    startsAt: z.string().datetime(),
    expiresAt: z.string().datetime(),
    clearedAt: z.string().datetime().nullable(),
  })
  .openapi('DisplayOverride');

function overrideView(r: OverrideRow): z.infer<typeof overrideSchema> {
  return {
    id: r.id,
    spaceId: r.space_id,
    state: r.display_state,
    reason: r.reason,
    createdBy: r.created_by,
    startsAt: r.starts_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    clearedAt: r.cleared_at?.toISOString() ?? null,
  };
}

const displayStateSchema = z
  .object({
    spaceId: z.string().uuid(),
    displayDevEui: z.string().nullable(),
    kind: z.string().openapi({ description: 'the look the display must show' }),
    reason: z.string(),
    displayCode: z.unknown(),
    activePolicyId: z.string().uuid().nullable(),
    overrideId: z.string().uuid().nullable(),
  })
  .openapi('DisplayState');

const policyFields = {
  name: z.string().trim().min(1).max(200),
  displayCodes: z.record(z.unknown()).openapi({ description: 'display code per look (free, occupied, ...)' }),
  active: z.boolean(),
};
const createPolicyBody = z
  .object(policyFields)
  .partial({ active: true })
  .strict()
  .openapi('DisplayPolicyCreate');
const updatePolicyBody = z
  .object(policyFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('DisplayPolicyUpdate');
const createOverrideBody = z
  .object({
    spaceId: z.string().uuid(),
    state: z.enum(overrideStates),
    reason: z.string().max(500).optional(),
    expiresAt: z.string().datetime({ offset: true }),
  })
  .strict()
  .openapi('DisplayOverrideCreate');
const policyParams = z.object({ policyId: z.string().uuid() });
const overrideParams = z.object({ overrideId: z.string().uuid() });
const spaceParams = z.object({ spaceId: z.string().uuid() });
const overrideList = z.object({ spaceId: z.string().uuid().optional() });

const read = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const manage = { role: 'admin', scope: 'displays:write', write: true } as const;
const operate = { role: 'operator', scope: 'displays:write', write: true } as const;

/** Display policies (at most one active per tenant), overrides, and what a space's display must show now. */
export function addDisplayRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/display-policies',
    operationId: 'listDisplayPolicies',
    summary: 'List display policies (oldest first; small, so not paged)',
    tag: 'displays',
    access: read,
    status: 200,
    response: z.object({ data: z.array(policySchema) }),
    handler: async ({ read }) => ({
      data: (await read((db, tenantId) => listPolicies(db, tenantId))).map(policyView),
    }),
  });
  api.add({
    method: 'post',
    path: '/display-policies',
    operationId: 'createDisplayPolicy',
    summary: "Create a display policy; `active: true` makes it the tenant's active one",
    tag: 'displays',
    access: manage,
    body: createPolicyBody,
    status: 201,
    response: policySchema,
    handler: async ({ body, write }) =>
      policyView(
        await write((db, tenantId) =>
          createPolicy(db, tenantId, {
            name: body.name,
            displayCodes: body.displayCodes,
            active: !!body.active,
          }),
        ),
      ),
  });
  api.add({
    method: 'get',
    path: '/display-policies/:policyId',
    operationId: 'getDisplayPolicy',
    summary: 'Get a display policy',
    tag: 'displays',
    access: read,
    params: policyParams,
    status: 200,
    response: policySchema,
    handler: async ({ params, read }) =>
      policyView(await read((db, tenantId) => getPolicy(db, tenantId, params.policyId))),
  });
  api.add({
    method: 'patch',
    path: '/display-policies/:policyId',
    operationId: 'updateDisplayPolicy',
    summary: 'Update a display policy; `active` activates or deactivates it',
    tag: 'displays',
    access: manage,
    params: policyParams,
    body: updatePolicyBody,
    status: 200,
    response: policySchema,
    handler: async ({ params, body, write }) =>
      policyView(await write((db, tenantId) => updatePolicy(db, tenantId, params.policyId, body))),
  });
  api.add({
    method: 'get',
    path: '/display-overrides',
    operationId: 'listDisplayOverrides',
    summary: 'Overrides in force or scheduled (not cleared, not expired)',
    tag: 'displays',
    access: read,
    query: overrideList,
    status: 200,
    response: z.object({ data: z.array(overrideSchema) }),
    handler: async ({ query, read }) => ({
      data: (await read((db, tenantId) => listActiveOverrides(db, tenantId, query.spaceId))).map(
        overrideView,
      ),
    }),
  });
  api.add({
    method: 'post',
    path: '/display-overrides',
    operationId: 'createDisplayOverride',
    summary: "Force a space's display until `expiresAt` (overlapping an uncleared override: 409)",
    tag: 'displays',
    access: operate,
    body: createOverrideBody,
    status: 201,
    response: overrideSchema,
    handler: async ({ body, write, principal }) =>
      overrideView(
        await write((db, tenantId) =>
          createOverride(db, tenantId, {
            ...body,
            createdBy: principal.kind === 'member' ? principal.userId : null,
          }),
        ),
      ),
  });
  api.add({
    method: 'delete',
    path: '/display-overrides/:overrideId',
    operationId: 'clearDisplayOverride',
    summary: 'Clear an override (kept for the record)',
    tag: 'displays',
    access: operate,
    params: overrideParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => clearOverride(db, tenantId, params.overrideId));
      return undefined;
    },
  });
  api.add({
    method: 'get',
    path: '/spaces/:spaceId/display-state',
    operationId: 'getDisplayState',
    summary: "What the space's display must show now, and why",
    tag: 'displays',
    access: read,
    params: spaceParams,
    status: 200,
    response: displayStateSchema,
    handler: async ({ params, read }) => read((db, tenantId) => computedState(db, tenantId, params.spaceId)),
  });
}
