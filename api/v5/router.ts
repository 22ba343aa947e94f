import express, { type ErrorRequestHandler, type Router } from 'express';
import { PlatformError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Pool } from '../../lib/db/pool.js';
import { createSessions } from '../auth/sessions.js';
import type { TokenService } from '../auth/tokens.js';
import { perIpLimit, type RateLimiter, type RateLimits } from '../http/rate-limit.js';
import { requestId } from '../http/request-id.js';
import { ApiRoutes } from '../http/route.js';
import { problemFacts } from '../problem.js';
import { addV5CoreRoutes } from './routes-core.js';
import { addV5OperationRoutes } from './routes-operations.js';

/**
 * The v5-compatible surface under `/api/v1` (../shared/reference/v5-openapi.json): v5 paths, field names and
 * statuses over the same services as v6 (`api/services/`), with the same authentication, roles, scopes, rate
 * limits, tenant isolation and audit (the route helper in api/http/route.ts). Errors are v5 problems:
 * `request_id` instead of v6's `requestId`. `POST /api/v1/uplink` is not here: the ingest service serves it.
 */
export const v5Base = '/api/v1';

/** What the v5 surface needs (a subset of the app's ApiDeps). */
export interface V5Deps {
  apiPool: Pool;
  logger: Logger;
  tokens: TokenService;
  refreshTokenTtlS: number;
  limiter?: RateLimiter | undefined;
  limits: RateLimits;
}

export function v5Routes(deps: V5Deps): ApiRoutes {
  const api = new ApiRoutes(
    { pool: deps.apiPool, tokens: deps.tokens, limiter: deps.limiter, limits: deps.limits },
    v5Base,
  );
  addV5CoreRoutes(api, {
    pool: deps.apiPool,
    sessions: createSessions(deps.apiPool, deps.tokens, { refreshTokenTtlS: deps.refreshTokenTtlS }),
    tokens: deps.tokens,
    refreshTokenTtlS: deps.refreshTokenTtlS,
    limits: deps.limits,
  });
  addV5OperationRoutes(api);
  return api;
}

/** v5 problem+json: the v6 classification, v5 field names. */
export function v5ProblemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const { fields, ...facts } = problemFacts(error, logger, req);
    res
      .status(facts.status)
      .type('application/problem+json')
      .json({
        ...facts,
        instance: req.originalUrl,
        request_id: req.requestId,
        ...(fields ? { errors: fields } : {}),
      });
  };
}

/** The router to mount at `v5Base`: request id, per-IP limit, JSON body, the routes, v5 problems (404 too). */
export function v5Router(deps: V5Deps): Router {
  const router = express.Router();
  router.use(requestId());
  router.use(perIpLimit(deps.limiter, deps.limits));
  router.use(express.json({ limit: '64kb' }));
  router.use(v5Routes(deps).router);
  router.use((req, _res, next) =>
    next(new PlatformError('NOT_FOUND', `no route for ${req.method} ${req.originalUrl}`)),
  );
  router.use(v5ProblemHandler(deps.logger));
  return router;
}
