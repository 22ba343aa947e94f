import type { Pool } from '../../lib/db/pool.js';
import type { ApiRoutes } from '../http/route.js';
import { minPasswordLength, registerTenant } from '../services/registration.js';
import { acceptInviteToken } from '../services/tenants.js';
import { z } from '../http/zod.js';
import type { Sessions } from '../auth/sessions.js';
import { roles } from '../auth/principal.js';

const membershipSchema = z.object({
  tenantId: z.string().uuid(),
  tenantSlug: z.string(),
  tenantName: z.string(),
  role: z.enum(roles),
});

export const sessionSchema = z
  .object({
    accessToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().openapi({ description: 'seconds' }),
    refreshToken: z.string().nullable(),
    tenantId: z.string().uuid().nullable(),
    platformAdmin: z.boolean(),
    memberships: z.array(membershipSchema),
  })
  .openapi('Session');

const loginBody = z.object({
  email: z.string().email().max(320),
  password: z.string().min(1).max(1024),
  tenantId: z.string().uuid().optional(),
});
const refreshBody = z.object({ refreshToken: z.string().min(1).max(200) });
const registerBody = z
  .object({
    tenantName: z.string().trim().min(1).max(200),
    email: z.string().email().max(320),
    password: z.string().min(minPasswordLength).max(1024),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .openapi('Registration');

const acceptInviteBody = z
  .object({
    token: z.string().min(1).max(200),
    password: z
      .string()
      .min(minPasswordLength)
      .max(1024)
      .optional()
      .openapi({ description: 'for a new account; not used with a bearer token' }),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .openapi('InviteAcceptance');
const acceptedSchema = z
  .object({
    tenantId: z.string().uuid(),
    userId: z.string().uuid(),
    role: z.enum(roles),
    userCreated: z.boolean().openapi({ description: 'true: a new account (log in with the password)' }),
  })
  .openapi('InviteAccepted');

/**
 * Registration, login, refresh (rotating), logout and invite acceptance: public routes, limited per IP only.
 */
export function addAuthRoutes(api: ApiRoutes, sessions: Sessions, pool: Pool): void {
  api.add({
    method: 'post',
    path: '/auth/register',
    operationId: 'register',
    summary: 'Create a tenant with the caller as its owner (a taken email: 409); returns a session in it',
    tag: 'auth',
    access: null,
    body: registerBody,
    status: 201,
    response: sessionSchema,
    handler: async ({ body, requestId }) => {
      const { tenantId } = await registerTenant(pool, body, requestId);
      return sessions.login({ email: body.email, password: body.password, tenantId }, requestId);
    },
  });
  api.add({
    method: 'post',
    path: '/auth/invites/accept',
    operationId: 'acceptInvite',
    summary:
      'Accept an invite: with a bearer token the logged-in user (of the invited email) joins; without one a new ' +
      'account is created with the password (an existing email: 409, log in first). Unknown token: 404; used, ' +
      'revoked or expired: 409',
    tag: 'auth',
    access: null,
    body: acceptInviteBody,
    status: 201,
    response: acceptedSchema,
    handler: async ({ body, requestId, bearerUser }) => {
      const accepted = await acceptInviteToken(pool, body, await bearerUser(), requestId);
      return {
        tenantId: accepted.tenantId,
        userId: accepted.userId,
        role: accepted.invite.role,
        userCreated: accepted.userCreated,
      };
    },
  });
  api.add({
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    summary: 'Log in with email and password; returns an access token and a refresh token',
    tag: 'auth',
    access: null,
    body: loginBody,
    status: 200,
    response: sessionSchema,
    handler: ({ body, requestId }) => sessions.login(body, requestId),
  });
  api.add({
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refresh',
    summary: 'Exchange a refresh token for new tokens (rotation; reuse of an old one revokes the family)',
    tag: 'auth',
    access: null,
    body: refreshBody,
    status: 200,
    response: sessionSchema,
    handler: ({ body, requestId }) => sessions.refresh(body.refreshToken, requestId),
  });
  api.add({
    method: 'post',
    path: '/auth/logout',
    operationId: 'logout',
    summary: 'Revoke a refresh token and every token rotated from the same login',
    tag: 'auth',
    access: null,
    body: refreshBody,
    status: 204,
    handler: async ({ body, requestId }) => {
      await sessions.logout(body.refreshToken, requestId);
      return undefined;
    },
  });
}
