import { existsSync } from 'node:fs';
import express, { type Express } from 'express';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';
import { mountOperability } from '../lib/http/health.js';
import type { Logger } from '../lib/logger.js';
import { createSessions } from './auth/sessions.js';
import type { TokenService } from './auth/tokens.js';
import { docsPage, openApiDocument } from './http/openapi.js';
import { perIpLimit, type RateLimiter, type RateLimits } from './http/rate-limit.js';
import { observeRequests } from './http/observe.js';
import { requestId } from './http/request-id.js';
import { ApiRoutes } from './http/route.js';
import { problemHandler } from './problem.js';
import { addApiKeyRoutes } from './routes/api-keys.js';
import { addAuditLogRoutes } from './routes/audit-log.js';
import { addAuthRoutes } from './routes/auth.js';
import { addDashboardRoutes } from './routes/dashboard.js';
import { addDeviceRoutes } from './routes/devices.js';
import { addDisplayRoutes } from './routes/displays.js';
import { addLimitRoutes } from './routes/limits.js';
import { addDownlinkRoutes } from './routes/downlinks.js';
import { addReservationRoutes } from './routes/reservations.js';
import { addSiteRoutes } from './routes/sites.js';
import { addSpaceRoutes } from './routes/spaces.js';
import { addTenantRoutes } from './routes/tenants.js';
import { addWebhookSecretRoutes } from './routes/webhook-secrets.js';
import { v5Base, v5Router } from './v5/router.js';

export interface ApiDeps {
  apiPool: Pool;
  logger: Logger;
  tokens: TokenService;
  refreshTokenTtlS: number;
  /** Absent: no rate limiting (e.g. tests without Redis). */
  limiter?: RateLimiter;
  limits: RateLimits;
  /** Built operator console (vite build output), served under /console when present. */
  consoleDist?: string;
}

export const apiBase = '/api/v6';

/** Every v6 route, registered once for express and the OpenAPI document. */
export function v6Routes(deps: ApiDeps): ApiRoutes {
  const api = new ApiRoutes(
    { pool: deps.apiPool, tokens: deps.tokens, limiter: deps.limiter, limits: deps.limits },
    apiBase,
  );
  addAuthRoutes(
    api,
    createSessions(deps.apiPool, deps.tokens, { refreshTokenTtlS: deps.refreshTokenTtlS }),
    deps.apiPool,
  );
  addDashboardRoutes(api);
  addSiteRoutes(api);
  addSpaceRoutes(api);
  addApiKeyRoutes(api);
  addAuditLogRoutes(api);
  addTenantRoutes(api);
  addDeviceRoutes(api);
  addReservationRoutes(api);
  addDisplayRoutes(api);
  addDownlinkRoutes(api);
  addWebhookSecretRoutes(api);
  addLimitRoutes(api, deps.limits);
  return api;
}

/** Builds the express app: operability endpoints, the v6 API with its document and docs, the console, problem+json. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  app.use(requestId(), observeRequests(registry, deps.logger));
  mountOperability(app, registry, async () => {
    await deps.apiPool.query('SELECT 1');
    return true;
  });
  const api = v6Routes(deps);
  const document = openApiDocument(api.registry);
  const v6 = express.Router();
  v6.use(requestId());
  v6.use(perIpLimit(deps.limiter, deps.limits));
  v6.use(express.json({ limit: '64kb' }));
  v6.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  v6.get('/docs', (_req, res) => {
    res.type('html').send(docsPage);
  });
  v6.use(api.router);
  app.use(apiBase, v6);
  app.use(v5Base, v5Router(deps));
  if (deps.consoleDist && existsSync(deps.consoleDist)) {
    app.use('/console', express.static(deps.consoleDist, { index: 'index.html' }));
  }
  app.use((req, _res, next) =>
    next(new PlatformError('NOT_FOUND', `no route for ${req.method} ${req.path}`)),
  );
  app.use(problemHandler(deps.logger));
  return app;
}
