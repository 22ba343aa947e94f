import type { PoolClient } from '../../lib/db/pool.js';

/**
 * The tenant's downlink queue as the database records it (downlink_jobs, downlink_outcomes). Outcome counts
 * start at the tenant's `settings.downlinkMetricsSince` (set by `resetQueueMetrics`, default: the last 24 hours),
 * so a reset is per tenant and survives restarts and several API instances.
 */
export interface QueueMetrics {
  since: Date;
  jobs: Record<'queued' | 'sent' | 'acked' | 'failed' | 'expired' | 'superseded', number>;
  outcomes: Record<string, number>;
  oldestQueuedAgeS: number | null;
}

/** The queue is unhealthy when a job waits longer than this (seconds). */
export const maxQueuedAgeS = 900;

export async function queueMetrics(db: PoolClient, tenantId: string): Promise<QueueMetrics> {
  const since = (
    await db.query<{ since: Date }>(
      `SELECT coalesce((settings ->> 'downlinkMetricsSince')::timestamptz, now() - interval '24 hours') AS since
         FROM tenants WHERE id = $1`,
      [tenantId],
    )
  ).rows[0]?.since;
  const from = since ?? new Date(Date.now() - 86_400_000);
  const jobs = await db.query<{ status: keyof QueueMetrics['jobs']; n: number }>(
    `SELECT status, count(*)::int AS n FROM downlink_jobs
      WHERE tenant_id = $1 AND (status IN ('queued', 'sent') OR updated_at >= $2) GROUP BY status`,
    [tenantId, from],
  );
  const outcomes = await db.query<{ outcome: string; n: number }>(
    `SELECT outcome, count(*)::int AS n FROM downlink_outcomes WHERE tenant_id = $1 AND time >= $2
      GROUP BY outcome`,
    [tenantId, from],
  );
  const oldest = await db.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(not_before))::float8 AS age FROM downlink_jobs
      WHERE tenant_id = $1 AND status = 'queued' AND not_before <= now()`,
    [tenantId],
  );
  const counts = { queued: 0, sent: 0, acked: 0, failed: 0, expired: 0, superseded: 0 };
  for (const r of jobs.rows) counts[r.status] = r.n;
  return {
    since: from,
    jobs: counts,
    outcomes: Object.fromEntries(outcomes.rows.map((r) => [r.outcome, r.n])),
    oldestQueuedAgeS: oldest.rows[0]?.age ?? null,
  };
}

export function queueHealthy(metrics: QueueMetrics): boolean {
  return metrics.oldestQueuedAgeS === null || metrics.oldestQueuedAgeS <= maxQueuedAgeS;
}

/** Starts the outcome counts afresh from now (jobs still queued or sent keep counting). */
export async function resetQueueMetrics(db: PoolClient, tenantId: string): Promise<Date> {
  const { rows } = await db.query<{ since: Date }>(
    `UPDATE tenants SET settings = settings || jsonb_build_object('downlinkMetricsSince', now()), updated_at = now()
      WHERE id = $1 RETURNING now() AS since`,
    [tenantId],
  );
  return rows[0]!.since;
}
