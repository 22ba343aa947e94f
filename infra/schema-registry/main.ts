// Entry point of the local Schema Registry (started by infra/services/schema-registry.sh). The only place that
// reads the environment; it builds the registry over its JSON-lines file and serves it on 127.0.0.1.
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { JsonLinesLog, Registry } from './registry.js';
import { startServer } from './server.js';

const host = '127.0.0.1';
/** Requests in flight get this long after SIGTERM; then connections are cut and the file is flushed. */
const shutdownGraceMs = 5_000;

const envSchema = z.object({
  SCHEMA_REGISTRY_PORT: z.coerce.number().int().min(0).max(65_535).default(58_081),
  SCHEMA_REGISTRY_DATA: z.string().min(1).optional(),
  PARKING_DATA_DIR: z.string().min(1).default('.data'),
  LOG_LEVEL: z.string().default('info'),
});

interface Config {
  readonly port: number;
  readonly dataFile: string;
  readonly logLevel: string;
}

function readConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = envSchema.parse(env);
  return Object.freeze({
    port: parsed.SCHEMA_REGISTRY_PORT,
    dataFile:
      parsed.SCHEMA_REGISTRY_DATA ?? join(parsed.PARKING_DATA_DIR, 'schema-registry', 'schemas.jsonl'),
    logLevel: parsed.LOG_LEVEL,
  });
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const logger = pino({ name: 'schema-registry', level: config.logLevel });
  const registry = Registry.open(new JsonLinesLog(config.dataFile));
  const server = await startServer({ registry, logger, host, port: config.port, graceMs: shutdownGraceMs });
  logger.info({ url: server.url, dataFile: config.dataFile }, 'schema registry listening');

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  // pino may not exist yet (bad config): stderr is what the service script tails.
  console.error('schema-registry failed to start:', error);
  process.exit(1);
});
