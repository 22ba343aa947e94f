import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { backoffDelayMs } from '../runtime/backoff.js';

/**
 * A periodic step (a processor's tick): runs `step` now, then every `everyMs` after the previous run finished (so
 * runs never overlap). A failing step is logged, reported through `onError` and retried with exponential backoff
 * (never faster than `everyMs`). `stop()` waits for the run in flight and starts no other.
 */
export function startTicker(opts: {
  name: string;
  everyMs: number;
  step: () => Promise<unknown>;
  logger: Logger;
  onError?: (error: unknown) => void;
}): Service {
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    let failures = 0;
    while (running) {
      let delay = opts.everyMs;
      try {
        await opts.step();
        failures = 0;
      } catch (error) {
        failures++;
        opts.onError?.(error);
        opts.logger.warn({ err: error, failures, tick: opts.name }, 'tick failed, backing off');
        delay = Math.max(delay, backoffDelayMs(failures, { initialMs: 100, maxMs: 5_000 }, Math.random));
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
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}
