import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { runMain, stopAll, type Service } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { createChirpstackApi } from './chirpstack-sync/chirpstack-client.js';
import { createSyncRepository } from './chirpstack-sync/repository.js';
import { startSyncWorker } from './chirpstack-sync/worker.js';
import { start } from './service.js';

// Composition root of the query API.
const config = loadConfig();
const logger = createLogger('api', config.logLevel);
await runMain('api', logger, config.shutdownGraceMs, async () => {
  const apiPool = createPool(config.postgres.apiUrl, 'parking-api', config.postgres.poolMax);
  // No offline queue: while Redis is away a limit check fails at once and the request is let through.
  const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  const service = await start({
    config: config.api,
    auth: config.apiAuth,
    rateLimit: config.apiRateLimit,
    apiPool,
    redis,
    logger,
    // Every instance its own group, fresh per process: each sees every event, and a restart starts at the end
    // of the logs (clients catch up by resuming, from PostgreSQL).
    live: {
      kafka: createKafka(config.kafka, logger),
      registry: createSchemaRegistry(config.schemaRegistry),
      topics: {
        occupancyChanges: config.topics.occupancyChanges,
        deviceStatus: config.topics.deviceStatus,
        livenessAlerts: config.liveness.alertsTopic,
        reservationEvents: config.reservations.eventsTopic,
      },
      groupId: `${config.apiLive.groupPrefix}-${randomUUID()}`,
      options: config.apiLive,
    },
  });
  // Devices and gateways -> ChirpStack (api/chirpstack-sync), when CHIRPSTACK_API_URL and _TOKEN are set. The worker
  // records outcomes for every tenant, so it writes through the pipeline role, on a small pool of its own.
  let sync: Service | undefined;
  if (config.chirpstackSync.enabled) {
    const syncPool = createPool(config.postgres.pipelineUrl, 'parking-api-chirpstack-sync', 2);
    const worker = startSyncWorker({
      repository: createSyncRepository(syncPool),
      chirpstack: createChirpstackApi(config.chirpstackSync),
      options: config.chirpstackSync,
      logger: logger.child({ component: 'chirpstack-sync' }),
    });
    sync = { stop: () => stopAll([{ stop: () => syncPool.end() }, worker]) };
  } else logger.info('chirpstack sync disabled (CHIRPSTACK_API_URL / CHIRPSTACK_API_TOKEN unset)');
  return {
    stop: () =>
      stopAll([{ stop: async () => void redis.disconnect() }, { stop: () => apiPool.end() }, service, sync]),
  };
});
