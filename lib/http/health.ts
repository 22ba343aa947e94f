import express, { type Express } from 'express';
import type { Registry } from 'prom-client';

/**
 * Liveness (`/health`: the process serves requests), readiness (`/ready`: every dependency check passes, 503
 * otherwise, so a load balancer stops sending traffic while draining or while Kafka is away) and `/metrics`.
 */
export function mountOperability(
  app: Express,
  registry: Registry,
  isReady: () => boolean | Promise<boolean>,
): void {
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const ready = await Promise.resolve(isReady()).catch(() => false);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
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
