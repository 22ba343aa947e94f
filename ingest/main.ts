import { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { runMain, stopAll } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { start } from './service.js';

// Composition root of the ingest bridge: the only place its clients are built.
const config = loadConfig();
const logger = createLogger('ingest', config.logLevel);
await runMain('ingest', logger, config.shutdownGraceMs, async () => {
  const pipelinePool = createPool(config.postgres.pipelineUrl, 'parking-ingest', config.postgres.poolMax);
  const kafka = createKafka(config.kafka, logger, 'parking-ingest');
  // No offline queue: while Redis is away, dedup calls fail at once and the bridge uses its local window.
  const redis = config.ingest.dedup.redis
    ? new Redis(config.redisUrl, {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        maxRetriesPerRequest: 1,
      })
    : undefined;
  redis?.on('error', (error) => logger.warn({ err: error }, 'redis unavailable'));
  const service = await start({
    config,
    logger,
    pipelinePool,
    kafka,
    registry: createSchemaRegistry(config.schemaRegistry),
    redis,
  });
  return {
    stop: () =>
      stopAll([{ stop: () => pipelinePool.end() }, { stop: async () => void redis?.disconnect() }, service]),
  };
}).catch((error: unknown) => {
  logger.fatal({ err: error }, 'ingest failed');
  process.exit(1);
});
