import { existsSync } from 'node:fs';
import express, { type Express } from 'express';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';
import { mountOperability } from '../lib/http/health.js';
import type { Logger } from '../lib/logger.js';
import { apiKeyAuth } from './auth.js';
import { problemHandler } from './problem.js';
import { spacesRouter } from './routes/spaces.js';

export interface ApiDeps {
  apiPool: Pool;
  logger: Logger;
  /** Built operator console (vite build output), served under /console when present. */
  consoleDist?: string;
}

/** Builds the express app: operability endpoints, the authenticated v6 API, the console, problem+json errors. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  mountOperability(app, registry, async () => {
    await deps.apiPool.query('SELECT 1');
    return true;
  });
  const v6 = express.Router();
  v6.use(apiKeyAuth(deps.apiPool));
  v6.use('/spaces', spacesRouter(deps.apiPool));
  app.use('/api/v6', v6);
  if (deps.consoleDist && existsSync(deps.consoleDist)) {
    app.use('/console', express.static(deps.consoleDist, { index: 'index.html' }));
  }
  app.use((req, _res, next) =>
    next(new PlatformError('NOT_FOUND', `no route for ${req.method} ${req.path}`)),
  );
  app.use(problemHandler(deps.logger));
  return app;
}
