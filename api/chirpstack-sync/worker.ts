import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type { ChirpstackApi } from './chirpstack-client.js';
import { outcome, plan, type BackoffOptions, type SyncStatus } from './decide.js';
import type { SyncRepository } from './repository.js';

export interface SyncWorkerOptions extends BackoffOptions {
  /** Pause between passes when the last one found nothing due. */
  tickMs: number;
  /** Rows claimed per pass; the calls of a pass run one after another (bounded work, bounded load on ChirpStack). */
  batchSize: number;
  callTimeoutMs: number;
}

export interface SyncWorkerDeps {
  repository: SyncRepository;
  chirpstack: ChirpstackApi;
  options: SyncWorkerOptions;
  logger: Logger;
  /** Only this tenant's rows (tests); production syncs every tenant. */
  tenantId?: string;
  random?: () => number;
}

export interface SyncWorker extends Service {
  /** One pass: claims due rows, sends each, records each outcome; resolves with the statuses recorded. */
  runOnce(): Promise<SyncStatus[]>;
}

/**
 * Platform -> ChirpStack sync worker. A row is claimed with a lease longer than one call, so it is sent by one
 * worker at a time; its outcome is recorded after the call returned (a crash in between resends it after the
 * lease: Create answers ALREADY_EXISTS and the next pass updates). Passes never overlap; stop() waits for the pass
 * in flight (at most batchSize calls of callTimeoutMs each) and closes the gRPC channel.
 */
export function startSyncWorker(deps: SyncWorkerDeps): SyncWorker {
  const { repository, chirpstack, options, logger } = deps;
  const random = deps.random ?? Math.random;
  // Longer than one call, so a slow call is not claimed twice.
  const leaseMs = options.callTimeoutMs * 2 + 1_000;

  async function runOnce(): Promise<SyncStatus[]> {
    const items = await repository.claim(options.batchSize, leaseMs, deps.tenantId);
    const statuses: SyncStatus[] = [];
    for (const item of items) {
      const chosen = plan(item, await repository.snapshot(item));
      const result =
        chosen.call === 'none' || chosen.call === 'skip'
          ? { ok: true as const }
          : await chirpstack.send(chosen);
      const next = outcome(item, chosen, result, options, random());
      await repository.record(item, next);
      // A delete that reached ChirpStack may have removed what another tenant registered with the same EUI in the
      // meantime (between our snapshot and the call): that tenant's row sends its create again.
      if ((chosen.call === 'deleteDevice' || chosen.call === 'deleteGateway') && next.status === 'synced')
        await repository.resendElsewhere(item);
      if (next.status !== 'synced')
        logger.warn(
          {
            tenantId: item.tenantId,
            kind: item.kind,
            eui: item.eui,
            code: next.lastErrorCode,
            status: next.status,
          },
          'chirpstack sync attempt failed',
        );
      statuses.push(next.status);
    }
    return statuses;
  }

  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      let delay = options.tickMs;
      try {
        // A full batch: more is probably due, go on at once.
        if ((await runOnce()).length === options.batchSize) delay = 0;
      } catch (error) {
        logger.warn({ err: error }, 'chirpstack sync pass failed');
      }
      if (!running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  return {
    runOnce,
    async stop() {
      running = false;
      wake?.();
      await loop;
      chirpstack.close();
    },
  };
}
