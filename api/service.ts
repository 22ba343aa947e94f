import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../lib/config.js';
import type { Pool } from '../lib/db/pool.js';
import { closeServer, listen } from '../lib/http/listen.js';
import type { Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import { createApp } from './app.js';
import { createTokenService } from './auth/tokens.js';
import { createRedisRateLimiter } from './http/rate-limit.js';

export interface ApiServiceDeps {
  config: Config['api'];
  /** Token signing; defaults to the local development settings (lib/config.ts) when not given. */
  auth?: Config['apiAuth'];
  rateLimit?: Config['apiRateLimit'];
  apiPool: Pool;
  /** Rate limits are counted here; without Redis the API does not limit. */
  redis?: Redis;
  logger: Logger;
}

export async function start(deps: ApiServiceDeps): Promise<Service & { port: number }> {
  const defaults = deps.auth && deps.rateLimit ? undefined : loadConfig({});
  const auth = deps.auth ?? defaults!.apiAuth;
  const limits = deps.rateLimit ?? defaults!.apiRateLimit;
  const app = createApp({
    apiPool: deps.apiPool,
    logger: deps.logger,
    tokens: createTokenService(auth),
    refreshTokenTtlS: auth.refreshTokenTtlS,
    limiter: deps.redis ? createRedisRateLimiter(deps.redis, limits.windowS, deps.logger) : undefined,
    limits,
    consoleDist: deps.config.consoleDist,
  });
  const { server, port } = await listen(app, deps.config.host, deps.config.port);
  deps.logger.info({ port }, 'api listening');
  return { port, stop: () => closeServer(server) };
}
