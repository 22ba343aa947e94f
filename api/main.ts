import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { runMain, stopAll } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { start } from './service.js';

// Composition root of the query API.
const config = loadConfig();
const logger = createLogger('api', config.logLevel);
await runMain('api', logger, config.shutdownGraceMs, async () => {
  const apiPool = createPool(config.postgres.apiUrl, 'parking-api', config.postgres.poolMax);
  const service = await start({ config: config.api, apiPool, logger });
  return { stop: () => stopAll([{ stop: () => apiPool.end() }, service]) };
});
