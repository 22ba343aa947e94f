import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { loadConfig, type Config } from '../lib/config.js';
import type { Pool } from '../lib/db/pool.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { stopAll, type Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import { createApp } from './app.js';
import { createTokenService } from './auth/tokens.js';
import { createRedisRateLimiter } from './http/rate-limit.js';
import { LiveHub } from './live/hub.js';
import { startLiveKafkaSource, type LiveTopics } from './live/kafka-source.js';
import { attachLiveServer, type LiveServer } from './live/server.js';

export interface ApiServiceDeps {
  config: Config['api'];
  /** Token signing; defaults to the local development settings (lib/config.ts) when not given. */
  auth?: Config['apiAuth'];
  rateLimit?: Config['apiRateLimit'];
  apiPool: Pool;
  /** Rate limits are counted here; without Redis the API does not limit. */
  redis?: Redis;
  logger: Logger;
  /** WebSocket live updates (api/live); absent: no `/api/v6/live`. */
  live?: {
    kafka: Kafka;
    registry: SchemaRegistry;
    /** The topic of each live record type (occupancy changes, device status, liveness alerts, reservations). */
    topics: LiveTopics;
    /** This instance's own consumer group: never shared with another instance. */
    groupId: string;
    /** Defaults to the local development settings (lib/config.ts). */
    options?: Config['apiLive'];
  };
}

export async function start(deps: ApiServiceDeps): Promise<Service & { port: number; live?: LiveServer }> {
  const defaults = deps.auth && deps.rateLimit ? undefined : loadConfig({});
  const auth = deps.auth ?? defaults!.apiAuth;
  const limits = deps.rateLimit ?? defaults!.apiRateLimit;
  const tokens = createTokenService(auth);
  const app = createApp({
    apiPool: deps.apiPool,
    logger: deps.logger,
    tokens,
    refreshTokenTtlS: auth.refreshTokenTtlS,
    limiter: deps.redis ? createRedisRateLimiter(deps.redis, limits.windowS, deps.logger) : undefined,
    limits,
    consoleDist: deps.config.consoleDist,
  });
  const { server, port } = await listen(app, deps.config.host, deps.config.port);
  const http: Service = { stop: () => closeServer(server) };
  if (!deps.live) {
    deps.logger.info({ port }, 'api listening');
    return { port, ...http };
  }
  // Sockets close (1001) before the HTTP server waits for its connections; the consumer stops first.
  const hub = new LiveHub();
  const live = attachLiveServer(server, {
    pool: deps.apiPool,
    tokens,
    hub,
    logger: deps.logger.child({ component: 'live' }),
    options: deps.live.options ?? loadConfig({}).apiLive,
  });
  let source: Service;
  try {
    source = await startLiveKafkaSource({
      kafka: deps.live.kafka,
      registry: deps.live.registry,
      topics: deps.live.topics,
      groupId: deps.live.groupId,
      hub,
      logger: deps.logger.child({ component: 'live' }),
    });
  } catch (error) {
    await stopAll([http, live]);
    throw error;
  }
  deps.logger.info({ port }, 'api listening');
  return { port, live, stop: () => stopAll([http, live, source]) };
}
