import express, { type Express, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';

/**
 * Liveness (`/health`, `/health/live`: the process serves requests), readiness (`/ready`, `/health/ready`: every dependency check passes, 503
 * otherwise, so a load balancer stops sending traffic while draining or while Kafka is away) and `/metrics`.
 */
export function mountOperability(
  app: Express,
  registry: Registry,
  isReady: () => boolean | Promise<boolean>,
): void {
  const live: RequestHandler = (_req, res) => {
    res.json({ status: 'ok' });
  };
  const ready: RequestHandler = async (_req, res) => {
    const ok = await Promise.resolve(isReady()).catch(() => false);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready' });
  };
  // `/health/live` and `/health/ready` are the same probes under the paths the v5 API documented.
  app.get(['/health', '/health/live'], live);
  app.get(['/ready', '/health/ready'], ready);
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
}

export function createOperabilityApp(registry: Registry, isReady: () => boolean | Promise<boolean>): Express {
  const app = express();
  app.disable('x-powered-by');
  mountOperability(app, registry, isReady);
  return app;
}
