import type { Admin } from 'kafkajs';
import type { Pool } from '../../lib/db/pool.js';
import { loadOffsets } from './offsets.js';

/**
 * A processor's consumer lag as the database sees it: per partition, the log end minus the stored next offset
 * (processor_offsets, the source of truth for where the processor resumes), summed over the topic's partitions.
 * A partition never applied counts from the log start; a stored offset behind the log start counts from the log
 * start (the processor resets to it). Null when the broker or the database does not answer within `timeoutMs`:
 * callers treat an unknown lag as a large one.
 */
export async function storedLag(
  deps: { pool: Pool; admin: Admin; groupId: string; topic: string },
  timeoutMs = 2_000,
): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  try {
    return await Promise.race([measure(deps), timeout]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function measure(deps: { pool: Pool; admin: Admin; groupId: string; topic: string }): Promise<number> {
  const ranges = await deps.admin.fetchTopicOffsets(deps.topic);
  const stored = await loadOffsets(
    deps.pool,
    deps.groupId,
    deps.topic,
    ranges.map((r) => r.partition),
  );
  let lag = 0n;
  for (const r of ranges) {
    const low = BigInt(r.low);
    const high = BigInt(r.high);
    const next = stored.get(r.partition) ?? low;
    const from = next < low ? low : next;
    if (high > from) lag += high - from;
  }
  return Number(lag);
}
