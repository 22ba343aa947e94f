import type { Logger } from './logger.js';

/**
 * The one lifecycle shape: every service exports `start(deps): Promise<Service>`; main.ts runs it with
 * runMain(), which registers signal handlers once, drains on SIGTERM/SIGINT and exits within the grace time.
 */
export interface Service {
  stop(): Promise<void>;
}

export type LifecycleState = 'STARTING' | 'RUNNING' | 'DRAINING' | 'STOPPED';

export async function runMain(
  name: string,
  logger: Logger,
  graceMs: number,
  start: () => Promise<Service>,
): Promise<void> {
  let state: LifecycleState = 'STARTING';
  let service: Service | undefined;
  const shutdown = async (signal: string) => {
    if (state === 'DRAINING' || state === 'STOPPED') return;
    state = 'DRAINING';
    logger.info({ signal }, `${name} draining`);
    // Force exit if draining hangs: a stuck connection must not keep a stopped service alive.
    const force = setTimeout(() => {
      logger.error({ graceMs }, `${name} did not stop within the grace time, exiting`);
      process.exit(1);
    }, graceMs);
    force.unref();
    try {
      await service?.stop();
      state = 'STOPPED';
      logger.info(`${name} stopped`);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, `${name} failed to stop cleanly`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  try {
    service = await start();
    state = 'RUNNING';
    logger.info(`${name} running`);
  } catch (error) {
    logger.fatal({ err: error }, `${name} failed to start`);
    process.exit(1);
  }
}

/** Stops services in reverse start order; every stop is attempted even if an earlier one throws. */
export async function stopAll(services: ReadonlyArray<Service | undefined>): Promise<void> {
  const errors: unknown[] = [];
  for (const service of [...services].reverse()) {
    try {
      await service?.stop();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'some components failed to stop');
}
