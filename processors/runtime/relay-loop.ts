import type { PoolClient } from '../../lib/db/pool.js';
import type { Logger } from '../../lib/logger.js';
import { backoffDelayMs } from './backoff.js';
import type { ProcessorMetrics } from './metrics.js';

/**
 * The polling loop every outbox relay runs: call `relayOnce` until it sends less than a full batch, then wait
 * `idleMs` (or until `kick()`); on failure back off exponentially (100 ms to 5 s, jittered), counted and logged.
 * `stop()` ends the loop after the relay call in progress.
 */
export interface RelayLoop {
  kick(): void;
  stop(): Promise<void>;
}

export interface RelayLoopOptions {
  name: string;
  /** The error code counted when a relay call fails (what it could not reach). */
  failureCode: string;
  relayOnce(): Promise<number>;
  batchSize: number;
  idleMs: number;
  logger: Logger;
  metrics: ProcessorMetrics;
}

export function startRelayLoop(o: RelayLoopOptions): RelayLoop {
  let running = true;
  let wake: (() => void) | undefined;
  let failures = 0;
  const loop = (async () => {
    while (running) {
      let sent = 0;
      try {
        sent = await o.relayOnce();
        failures = 0;
      } catch (error) {
        failures++;
        o.metrics.errors.inc({ processor: o.name, code: o.failureCode, handling: 'retried' });
        o.logger.warn({ err: error, failures }, `${o.name} failed, backing off`);
        await sleep(backoffDelayMs(failures, { initialMs: 100, maxMs: 5_000 }, Math.random));
        continue;
      }
      if (sent < o.batchSize && running)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, o.idleMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      wake = undefined;
    }
  })();
  return {
    kick: () => wake?.(),
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}

/**
 * Marks published outbox rows sent, in the relay's transaction (keyed like the hypertable: tenant, id, time).
 * `sent_at IS NULL` lets the planner read only unsent rows (the outbox_unsent partial index): without it, each
 * mark sorted every row the outbox holds, sent ones included (EXPLAIN ANALYZE: 38 ms of 44 ms for 1,000 marks
 * against 27,000 rows, growing with the table).
 */
export async function markOutboxSent(
  client: PoolClient,
  rows: ReadonlyArray<{ tenant_id: string; id: string; time: Date }>,
): Promise<void> {
  await client.query(
    `UPDATE outbox o SET sent_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS s(t, i, tm)
      WHERE o.sent_at IS NULL AND o.tenant_id = s.t AND o.id = s.i AND o.time = s.tm`,
    [rows.map((r) => r.tenant_id), rows.map((r) => r.id), rows.map((r) => r.time)],
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
