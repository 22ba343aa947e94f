import { Registry, collectDefaultMetrics } from 'prom-client';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createOperabilityApp } from '../lib/http/health.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { runMain, stopAll } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { startOccupancy } from './occupancy/run.js';

// Composition root of the stream processors.
const config = loadConfig();
const logger = createLogger('processors', config.logLevel);
await runMain('processors', logger, config.shutdownGraceMs, async () => {
  const pipelinePool = createPool(config.postgres.pipelineUrl, 'parking-processors', config.postgres.poolMax);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const occupancy = await startOccupancy({
    kafka: createKafka(config.kafka, logger, 'parking-processors'),
    registry: createSchemaRegistry(config.schemaRegistry),
    pipelinePool,
    topics: config.topics,
    groupId: config.occupancy.groupId,
    logger: logger.child({ processor: 'occupancy' }),
    metrics: registry,
    options: { drainMs: config.shutdownGraceMs },
  });
  let draining = false;
  const http = await listen(
    createOperabilityApp(registry, () => !draining),
    config.processors.host,
    config.processors.httpPort,
  );
  return {
    stop: async () => {
      draining = true;
      await stopAll([
        { stop: () => pipelinePool.end() },
        occupancy,
        { stop: () => closeServer(http.server) },
      ]);
    },
  };
});
