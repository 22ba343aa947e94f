import type { RequestHandler } from 'express';
import { Histogram, type Registry } from 'prom-client';
import type { Logger } from '../../lib/logger.js';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The matched route as registered (`/api/v6/spaces/:spaceId`), set by ApiRoutes; bounded label values. */
    route?: string;
  }
}

/** Latency buckets in seconds: the p95 target is 50 ms, so the buckets are dense below 100 ms. */
const buckets = [0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5, 5];

/**
 * Request observation for the whole app: `http_request_duration_seconds{method, route, status}` on the given
 * registry (route is the registered template, `unmatched` otherwise, so label values stay bounded) and one
 * structured log line per finished request with its request id. Must be mounted before the routers.
 */
export function observeRequests(registry: Registry, logger: Logger): RequestHandler {
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route template, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets,
    registers: [registry],
  });
  const log = logger.child({ component: 'http' });
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = res.locals.route ?? 'unmatched';
      const status = res.statusCode;
      histogram.observe({ method: req.method, route, status: String(status) }, seconds);
      const entry = {
        requestId: req.requestId,
        method: req.method,
        route,
        path: req.originalUrl.split('?')[0],
        status,
        durationMs: Math.round(seconds * 1e4) / 10,
      };
      if (status >= 500) log.error(entry, 'request');
      else log.info(entry, 'request');
    });
    next();
  };
}
