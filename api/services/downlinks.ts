import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';

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

export interface JobRow {
  id: string;
  dev_eui: string;
  space_id: string | null;
  f_port: number;
  confirmed: boolean;
  reason: string;
  status: keyof QueueMetrics['jobs'];
  attempts: number;
  not_before: Date;
  expires_at: Date | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  sort_key: string;
}

export const jobSorts = { createdAt: 'created_at', updatedAt: 'updated_at' } as const;
export type JobSort = keyof typeof jobSorts;

/** One page of the tenant's downlink jobs (without payloads), optionally by status or display. */
export async function listJobs(
  db: PoolClient,
  tenantId: string,
  query: ListInput<JobSort> & { status?: JobRow['status'] | undefined; devEui?: string | undefined },
): Promise<JobRow[]> {
  const page = pageSql(jobSorts, query, 4);
  const { rows } = await db.query<JobRow>(
    `SELECT id, dev_eui, space_id, f_port, confirmed, reason, status, attempts, not_before, expires_at,
            last_error, created_at, updated_at, ${page.sortKey}
       FROM downlink_jobs
      WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR dev_eui = $3)
        AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
    [tenantId, query.status ?? null, query.devEui ?? null, ...page.params],
  );
  return rows;
}

export async function getJob(db: PoolClient, tenantId: string, jobId: string): Promise<JobRow> {
  const { rows } = await db.query<JobRow>(
    `SELECT id, dev_eui, space_id, f_port, confirmed, reason, status, attempts, not_before, expires_at,
            last_error, created_at, updated_at, id::text AS sort_key
       FROM downlink_jobs WHERE tenant_id = $1 AND id = $2`,
    [tenantId, jobId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such downlink job');
  return rows[0];
}
