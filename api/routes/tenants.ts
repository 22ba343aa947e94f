import { PlatformError } from '../../lib/errors.js';
import { roles } from '../auth/principal.js';
import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  addMember,
  changeMemberRole,
  createInvite,
  inviteStatuses,
  listInvites,
  revokeInvite,
  type InviteRow,
  getTenant,
  getUser,
  listUsers,
  removeMember,
  tenantUsage,
  updateTenant,
  type TenantRow,
  type UserRow,
} from '../services/tenants.js';

const tenantSchema = z
  .object({
    id: z.string().uuid(),
    slug: z.string(),
    name: z.string(),
    active: z.boolean(),
    settings: z.record(z.unknown()),
    limits: z.record(z.unknown()),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi('Tenant');

function tenantView(r: TenantRow): z.infer<typeof tenantSchema> {
  return {
    id: r.id,
    slug: r.slug,
    name: r.name,
    active: r.is_active,
    settings: r.settings,
    limits: r.limits,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const usageSchema = z
  .object({
    spaces: z.number().int(),
    sites: z.number().int(),
    sensorDevices: z.number().int(),
    displayDevices: z.number().int(),
    activeReservations: z.number().int(),
  })
  .openapi('TenantUsage');

const memberSchema = z
  .object({
    id: z.string().uuid(),
    email: z.string(),
    name: z.string(),
    role: z.enum(roles),
    active: z.boolean(),
    emailVerified: z.boolean(),
    lastLoginAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
  })
  .openapi('Member');

function memberView(r: UserRow): z.infer<typeof memberSchema> {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    active: r.is_active,
    emailVerified: r.email_verified,
    lastLoginAt: r.last_login_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

const updateTenantBody = z
  .object({ name: z.string().trim().min(1).max(200), settings: z.record(z.unknown()) })
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('TenantUpdate');
const addMemberBody = z
  .object({ email: z.string().email().max(320).toLowerCase(), role: z.enum(roles) })
  .strict()
  .openapi('MemberCreate');
const roleBody = z
  .object({ role: z.enum(roles) })
  .strict()
  .openapi('MemberUpdate');
const userParams = z.object({ userId: z.string().uuid() });

export const inviteSchema = z
  .object({
    id: z.string().uuid(),
    email: z.string(),
    role: z.enum(roles),
    status: z.enum(inviteStatuses),
    invitedBy: z
      .string()
      .uuid()
      .nullable()
      .openapi({ description: 'the inviting user; null for an API key' }),
    expiresAt: z.string().datetime(),
    acceptedAt: z.string().datetime().nullable(),
    acceptedBy: z.string().uuid().nullable(),
    revokedAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
  })
  .openapi('Invite');

export function inviteView(r: InviteRow): z.infer<typeof inviteSchema> {
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    status: r.status,
    invitedBy: r.invited_by,
    expiresAt: r.expires_at.toISOString(),
    acceptedAt: r.accepted_at?.toISOString() ?? null,
    acceptedBy: r.accepted_by,
    revokedAt: r.revoked_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

const createInviteBody = z
  .object({
    email: z.string().email().max(320).toLowerCase(),
    role: z.enum(roles),
    expiresInHours: z
      .number()
      .int()
      .min(1)
      .max(30 * 24)
      .default(72)
      .openapi({ description: 'how long the token can be accepted (default 72 hours, at most 30 days)' }),
  })
  .strict()
  .openapi('InviteCreate');
const createdInviteSchema = z
  .object({
    invite: inviteSchema,
    token: z.string().openapi({
      description:
        'shown once: the invitee accepts with it (POST /auth/invites/accept); only its hash is stored',
    }),
  })
  .openapi('InviteCreated');
const inviteParams = z.object({ inviteId: z.string().uuid() });
const inviteList = listQuery(['createdAt', 'email'], '-createdAt').extend({
  status: z.enum(inviteStatuses).optional(),
});
const userList = listQuery(['email', 'name', 'createdAt'], 'email');

const read = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const admin = { role: 'admin', scope: 'admin', write: false } as const;
const adminWrite = { ...admin, write: true } as const;

/**
 * The selected tenant, its members and their roles. Owners and admins manage members and invites; only an owner
 * may grant (or invite with), take or remove the owner role, and the last owner cannot leave or be demoted (409).
 * Invites are accepted through the public POST /auth/invites/accept (api/routes/auth.ts).
 */
export function addTenantRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/tenant',
    operationId: 'getTenant',
    summary: 'The selected tenant',
    tag: 'tenants',
    access: read,
    status: 200,
    response: tenantSchema,
    handler: async ({ read }) => tenantView(await read((db, tenantId) => getTenant(db, tenantId))),
  });
  api.add({
    method: 'patch',
    path: '/tenant',
    operationId: 'updateTenant',
    summary: 'Rename the tenant or replace its settings',
    tag: 'tenants',
    access: adminWrite,
    body: updateTenantBody,
    status: 200,
    response: tenantSchema,
    handler: async ({ body, write }) =>
      tenantView(await write((db, tenantId) => updateTenant(db, tenantId, body))),
  });
  api.add({
    method: 'get',
    path: '/tenant/usage',
    operationId: 'getTenantUsage',
    summary: "The tenant's current resource counts",
    tag: 'tenants',
    access: read,
    status: 200,
    response: usageSchema,
    handler: async ({ read }) => {
      const u = await read((db, tenantId) => tenantUsage(db, tenantId));
      return {
        spaces: u.spaces,
        sites: u.sites,
        sensorDevices: u.sensor_devices,
        displayDevices: u.display_devices,
        activeReservations: u.active_reservations,
      };
    },
  });
  api.add({
    method: 'get',
    path: '/members',
    operationId: 'listMembers',
    summary: 'List the users of the tenant with their roles',
    tag: 'tenants',
    access: admin,
    query: userList,
    status: 200,
    response: pageOf(memberSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listUsers(db, tenantId, query)), query, memberView),
  });
  api.add({
    method: 'post',
    path: '/members',
    operationId: 'addMember',
    summary: 'Add an existing user (by email) to the tenant with a role',
    tag: 'tenants',
    access: adminWrite,
    body: addMemberBody,
    status: 201,
    response: memberSchema,
    handler: async ({ body, write, principal }) => {
      const actorRole = principal.kind === 'member' ? principal.role : null;
      return memberView(
        await write((db, tenantId) => {
          if (body.role === 'owner' && actorRole !== 'owner')
            throw new PlatformError('FORBIDDEN', 'only an owner may grant the owner role');
          return addMember(db, tenantId, body);
        }),
      );
    },
  });
  api.add({
    method: 'post',
    path: '/invites',
    operationId: 'createInvite',
    summary:
      'Invite an email with a role (replaces an open invite of the same email); the token is shown once',
    tag: 'tenants',
    access: adminWrite,
    body: createInviteBody,
    status: 201,
    response: createdInviteSchema,
    handler: async ({ body, write, principal }) => {
      if (body.role === 'owner' && !(principal.kind === 'member' && principal.role === 'owner'))
        throw new PlatformError('FORBIDDEN', 'only an owner may invite an owner');
      const { invite, token } = await write((db, tenantId) =>
        createInvite(db, tenantId, {
          email: body.email,
          role: body.role,
          invitedBy: principal.kind === 'api_key' ? null : principal.userId,
          expiresInS: body.expiresInHours * 3_600,
        }),
      );
      return { invite: inviteView(invite), token };
    },
  });
  api.add({
    method: 'get',
    path: '/invites',
    operationId: 'listInvites',
    summary: 'List the invites of the tenant (pending, accepted, revoked, expired)',
    tag: 'tenants',
    access: admin,
    query: inviteList,
    status: 200,
    response: pageOf(inviteSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listInvites(db, tenantId, query)), query, inviteView),
  });
  api.add({
    method: 'delete',
    path: '/invites/:inviteId',
    operationId: 'revokeInvite',
    summary: 'Revoke an invite that was not accepted (revoking twice is harmless; an accepted one: 409)',
    tag: 'tenants',
    access: adminWrite,
    params: inviteParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => revokeInvite(db, tenantId, params.inviteId));
      return undefined;
    },
  });
  api.add({
    method: 'get',
    path: '/members/:userId',
    operationId: 'getMember',
    summary: 'Get a member of the tenant',
    tag: 'tenants',
    access: admin,
    params: userParams,
    status: 200,
    response: memberSchema,
    handler: async ({ params, read }) =>
      memberView(await read((db, tenantId) => getUser(db, tenantId, params.userId))),
  });
  api.add({
    method: 'patch',
    path: '/members/:userId',
    operationId: 'changeMemberRole',
    summary: "Change a member's role",
    tag: 'tenants',
    access: adminWrite,
    params: userParams,
    body: roleBody,
    status: 200,
    response: memberSchema,
    handler: async ({ params, body, write, principal }) =>
      memberView(
        await write((db, tenantId) =>
          changeMemberRole(
            db,
            tenantId,
            params.userId,
            body.role,
            principal.kind === 'member' ? principal.role : null,
          ),
        ),
      ),
  });
  api.add({
    method: 'delete',
    path: '/members/:userId',
    operationId: 'removeMember',
    summary: 'Remove a member from the tenant (the user keeps its other memberships)',
    tag: 'tenants',
    access: adminWrite,
    params: userParams,
    status: 204,
    handler: async ({ params, write, principal }) => {
      await write((db, tenantId) =>
        removeMember(db, tenantId, params.userId, principal.kind === 'member' ? principal.role : null),
      );
      return undefined;
    },
  });
}
