import { OpenAPIRegistry, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { Router, type Request, type Response } from 'express';
import type { AnyZodObject, ZodTypeAny } from 'zod';
import { withPlatformAdmin } from '../../lib/db/platform-admin.js';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError, isPlatformError } from '../../lib/errors.js';
import { authenticate, authorize, bearerToken, type Access, type Principal } from '../auth/principal.js';
import type { TokenService } from '../auth/tokens.js';
import { problemSchema } from '../problem.js';
import { applyDecision, type RateDecision, type RateLimiter, type RateLimits } from './rate-limit.js';
import { parseInput } from './validation.js';
import { z } from './zod.js';

export interface RouteDeps {
  pool: Pool;
  tokens: TokenService;
  /** Absent: no per-user / per-key limits (tests that do not need Redis). */
  limiter?: RateLimiter;
  limits: RateLimits;
}

/** A unit of database work for the request's tenant; `tenantId` is the tenant every query filters on. */
export type Work<T> = (db: PoolClient, tenantId: string) => Promise<T>;

export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  requestId: string;
  /** The authenticated caller; throws on public routes. */
  principal: Principal;
  /**
   * Reads as the caller: withTenant with the actor and request id, or for a platform admin withPlatformAdmin
   * (audited in platform_admin_access_log). Platform-admin reads see every tenant, so every query also filters
   * on `tenantId` explicitly.
   */
  read<T>(work: Work<T>): Promise<T>;
  /** Writes as the caller through withTenant; the audit trigger records the actor and request id. */
  write<T>(work: Work<T>): Promise<T>;
  /** Answers with one of the route's `otherStatuses` instead of `status` (e.g. 200 for an idempotent replay). */
  setStatus(status: Status): void;
  /**
   * Public routes that a logged-in user may also call (invite acceptance): the user id of the `Authorization:
   * Bearer` access token, null when none is sent; a bad token is UNAUTHENTICATED, as on any other route.
   */
  bearerUser(): Promise<string | null>;
}

declare module 'express-serve-static-core' {
  interface Locals {
    /** The caller's rate-limit decision for this request (after counting it), when a limiter is configured. */
    rateLimit?: RateDecision & { bucket: 'user' | 'api_key' };
  }
}

type Status = 200 | 201 | 202 | 204 | 503;

type Infer<S> = S extends ZodTypeAny ? z.infer<S> : undefined;

export interface RouteDefinition<
  P extends AnyZodObject | undefined,
  Q extends AnyZodObject | undefined,
  B extends ZodTypeAny | undefined,
  R extends ZodTypeAny | undefined,
> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express syntax relative to the API base, e.g. `/sites/:siteId`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** null: public (login, refresh, logout); otherwise who may call it. */
  access: Access | null;
  params?: P;
  query?: Q;
  body?: B;
  status: Status;
  /** Statuses the handler may choose with `setStatus`, documented with the same response body. */
  otherStatuses?: readonly Status[];
  response?: R;
  handler(ctx: RouteContext<Infer<P>, Infer<Q>, Infer<B>>): Promise<Infer<R>>;
}

/** PostgreSQL errors a request can cause, mapped to codes (unique/exclusion -> 409, bad values -> 400). */
function fromDatabase(error: unknown): unknown {
  if (isPlatformError(error) || typeof error !== 'object' || error === null) return error;
  const code = (error as { code?: unknown }).code;
  if (code === '23505' || code === '23P01')
    return new PlatformError('CONFLICT', 'conflicts with an existing resource', { cause: error });
  if (code === '23503')
    return new PlatformError('CONFLICT', 'still referenced, or references nothing', { cause: error });
  if (code === '23514' || code === '22P02' || code === '22007' || code === '22008')
    return new PlatformError('VALIDATION_FAILED', 'a value is out of range or malformed', { cause: error });
  return error;
}

/**
 * Registers routes on an express router and, from the same definitions, on an OpenAPI registry: what the
 * document says is what the route validates. Every route: request id (already set), authentication and
 * per-caller rate limit unless public, role/scope check, validation of path, query and body (400 listing the
 * fields), then the handler.
 */
export class ApiRoutes {
  readonly router = Router();
  readonly registry = new OpenAPIRegistry();
  /** Every registered operation, `METHOD /path` with OpenAPI path syntax (for tests and the docs page). */
  readonly operations: string[] = [];

  constructor(
    private readonly deps: RouteDeps,
    private readonly basePath: string,
  ) {}

  add<
    P extends AnyZodObject | undefined = undefined,
    Q extends AnyZodObject | undefined = undefined,
    B extends ZodTypeAny | undefined = undefined,
    R extends ZodTypeAny | undefined = undefined,
  >(def: RouteDefinition<P, Q, B, R>): void {
    const openApiPath = this.basePath + def.path.replace(/:([A-Za-z]+)/g, '{$1}');
    this.operations.push(`${def.method.toUpperCase()} ${openApiPath}`);
    this.registry.registerPath(this.describe(def, openApiPath));
    const { deps } = this;
    const routeLabel = this.basePath + def.path;
    this.router[def.method](def.path, async (req, res) => {
      res.locals.route = routeLabel;
      let principal: Principal | undefined;
      if (def.access) {
        principal = await this.authenticateAndLimit(req, res);
        authorize(principal, def.access);
      } else {
        await this.limitPendingIp(res);
      }
      const params = def.params ? parseInput(def.params, req.params, 'path') : undefined;
      const query = def.query ? parseInput(def.query, req.query, 'query') : undefined;
      const body = def.body ? parseInput(def.body, req.body ?? {}, 'body') : undefined;
      const caller = () => {
        if (!principal) throw new PlatformError('UNAUTHENTICATED', 'not authenticated');
        return principal;
      };
      const context = { actor: principal?.actor, requestId: req.requestId };
      let status = def.status;
      const ctx: RouteContext<Infer<P>, Infer<Q>, Infer<B>> = {
        req,
        res,
        params: params as Infer<P>,
        query: query as Infer<Q>,
        body: body as Infer<B>,
        requestId: req.requestId,
        get principal() {
          return caller();
        },
        read(work) {
          const p = caller();
          if (p.kind === 'platform_admin') {
            const reason = `${req.method} ${req.originalUrl} in tenant ${p.tenantId}`.slice(0, 500);
            return withPlatformAdmin(
              deps.pool,
              { userId: p.userId, reason, requestId: req.requestId },
              (db) => work(db, p.tenantId),
            );
          }
          return withTenant(deps.pool, p.tenantId, (db) => work(db, p.tenantId), context);
        },
        write(work) {
          const p = caller();
          if (p.kind === 'platform_admin')
            throw new PlatformError('FORBIDDEN', 'platform admins have read-only access to tenants');
          return withTenant(deps.pool, p.tenantId, (db) => work(db, p.tenantId), context);
        },
        async bearerUser() {
          const token = bearerToken(req);
          return token ? (await deps.tokens.verify(token)).userId : null;
        },
        setStatus(chosen) {
          if (!def.otherStatuses?.includes(chosen))
            throw new PlatformError('INTERNAL', `${def.operationId} does not declare the status ${chosen}`);
          status = chosen;
        },
      };
      let result: unknown;
      try {
        result = await def.handler(ctx);
      } catch (error) {
        throw fromDatabase(error);
      }
      if (status === 204) res.status(204).end();
      else res.status(status).json(result);
    });
  }

  /**
   * Authenticates, then counts the request in the caller's bucket (API key or user) and, when perIpLimit left it
   * to the route, in the address's bucket: one Redis round trip. Over either limit: 429; bad credentials from an
   * address over its limit: 429 as well, otherwise the authentication error.
   */
  private async authenticateAndLimit(req: Request, res: Response): Promise<Principal> {
    const { deps } = this;
    let principal: Principal;
    try {
      principal = await authenticate(req, deps.pool, deps.tokens);
    } catch (error) {
      await this.limitPendingIp(res);
      throw error;
    }
    if (!deps.limiter) return principal;
    const ip = res.locals.pendingIpHit;
    res.locals.pendingIpHit = undefined;
    const [bucket, limit, what] =
      principal.kind === 'api_key'
        ? [`key:${principal.keyId}`, deps.limits.perApiKey, 'API key']
        : [`user:${principal.userId}`, deps.limits.perUser, 'user'];
    const decisions = await deps.limiter.hitAll(ip ? [{ bucket, limit }, ip] : [{ bucket, limit }]);
    const [decision, ipDecision] = decisions as [RateDecision, RateDecision | undefined];
    res.locals.rateLimit = { bucket: principal.kind === 'api_key' ? 'api_key' : 'user', ...decision };
    // Over the address limit: answered like perIpLimit does (its headers, 429), before the caller's own.
    if (ipDecision && !ipDecision.allowed) applyDecision(res, ipDecision, deps.limits.windowS, 'address');
    applyDecision(res, decision, deps.limits.windowS, what);
    return principal;
  }

  /** Counts and applies the per-IP hit perIpLimit left to the route, if any (public routes, failed logins). */
  private async limitPendingIp(res: Response): Promise<void> {
    const ip = res.locals.pendingIpHit;
    if (!ip || !this.deps.limiter) return;
    res.locals.pendingIpHit = undefined;
    const [decision] = await this.deps.limiter.hitAll([ip]);
    applyDecision(res, decision!, this.deps.limits.windowS, 'address');
  }

  private describe(
    def: RouteDefinition<
      AnyZodObject | undefined,
      AnyZodObject | undefined,
      ZodTypeAny | undefined,
      ZodTypeAny | undefined
    >,
    path: string,
  ): RouteConfig {
    const problem = (description: string) => ({
      description,
      content: { 'application/problem+json': { schema: problemSchema } },
    });
    const access = def.access;
    const success = (description: string) =>
      def.response
        ? { description, content: { 'application/json': { schema: def.response } } }
        : { description: `${description}, no content` };
    const requirement = access
      ? `Requires the role ${access.role} or higher, or an API key with the scope ${access.scope}` +
        (access.write ? '; not available to platform admins acting in another tenant.' : '.')
      : 'Public.';
    return {
      method: def.method,
      path,
      operationId: def.operationId,
      summary: def.summary,
      description: requirement,
      tags: [def.tag],
      security: access ? [{ bearerAuth: [] }, { apiKey: [] }] : [],
      request: {
        ...(def.params ? { params: def.params } : {}),
        ...(def.query ? { query: def.query } : {}),
        ...(access ? { headers: tenantHeader } : {}),
        ...(def.body
          ? { body: { required: true, content: { 'application/json': { schema: def.body } } } }
          : {}),
      },
      responses: {
        [def.status]: success('success'),
        ...Object.fromEntries((def.otherStatuses ?? []).map((s) => [s, success('also answered')])),
        400: problem('invalid input; `errors` lists the fields'),
        ...(access
          ? {
              401: problem('missing, invalid or expired credentials'),
              403: problem('role, scope or tenant not allowed'),
              404: problem('no such resource in the selected tenant'),
            }
          : { 401: problem('invalid credentials') }),
        ...(def.method !== 'get' ? { 409: problem('conflicts with existing data') } : {}),
        429: problem('rate limit exceeded; see Retry-After'),
      },
    };
  }
}

const tenantHeader = z.object({
  'x-tenant-id': z
    .string()
    .uuid()
    .optional()
    .openapi({ description: "Bearer tokens only: the tenant to act in (default: the token's tenant)." }),
});
