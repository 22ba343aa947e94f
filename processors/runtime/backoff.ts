/**
 * Exponential backoff for retriable failures (pure: the caller supplies the random source). Attempt 1 waits
 * about `initialMs`, each next attempt twice as long, capped at `maxMs`; full jitter in [50 %, 100 %] of the
 * step keeps several processors from retrying in lockstep against a recovering database.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions,
  random: () => number = () => 1,
): number {
  const step = Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step * (0.5 + 0.5 * Math.min(1, Math.max(0, random()))));
}
