import type { PoolClient } from '../../lib/db/pool.js';
import {
  deviceKey,
  type DeviceQueue,
  type DownlinkEffect,
  type DownlinkJob,
  type DownlinkPolicy,
  type DownlinkState,
  type TokenBucket,
} from './reduce.js';

/**
 * The downlink reducer's state in PostgreSQL. A device's queue is its display_states row (gateway, last
 * confirmed payload) plus its one unconfirmed downlink_jobs row; the token buckets are downlink_buckets rows.
 * Callers lock the display_states rows first (the device lock), then call these, in one transaction.
 */
export interface DeviceRef {
  tenantId: string;
  devEui: string;
}

/** Why a job exists (downlink_jobs.reason) and the space it is for, recorded when the job is inserted. */
export interface JobMeta {
  spaceId: string | null;
  reason: 'state-change' | 'override' | 'policy' | 'manual';
}

const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());

/** The queues of the given devices; a device whose display_states row is missing is left out. */
export async function loadQueues(
  client: PoolClient,
  devices: readonly DeviceRef[],
): Promise<Record<string, DeviceQueue>> {
  const queues: Record<string, DeviceQueue> = {};
  if (devices.length === 0) return queues;
  const { rows } = await client.query<{
    tenant_id: string;
    dev_eui: string;
    gateway_id: string | null;
    lc_f_port: number | null;
    lc_payload: string | null;
    lc_at: Date | null;
    job_id: string | null;
    dedupe_key: string | null;
    correlation_id: string | null;
    f_port: number | null;
    payload: string | null;
    confirmed: boolean | null;
    created_at: Date | null;
    status: 'queued' | 'sent' | null;
    attempts: number | null;
    not_before: Date | null;
  }>(
    `SELECT s.tenant_id, s.dev_eui, s.gateway_id, s.last_confirmed_f_port AS lc_f_port,
            encode(s.last_confirmed_payload, 'hex') AS lc_payload, s.last_confirmed_at AS lc_at,
            j.id AS job_id, j.dedupe_key, j.correlation_id, j.f_port, encode(j.payload, 'hex') AS payload,
            j.confirmed, j.created_at, j.status, j.attempts, j.not_before
       FROM display_states s
       JOIN unnest($1::uuid[], $2::text[]) AS k(t, d) ON s.tenant_id = k.t AND s.dev_eui = k.d
       LEFT JOIN downlink_jobs j
              ON j.tenant_id = s.tenant_id AND j.dev_eui = s.dev_eui AND j.status IN ('queued', 'sent')`,
    [devices.map((d) => d.tenantId), devices.map((d) => d.devEui)],
  );
  for (const r of rows) {
    const job: DownlinkJob | null =
      r.job_id === null
        ? null
        : {
            jobId: r.job_id,
            requestId: r.dedupe_key!,
            correlationId: r.correlation_id,
            fPort: r.f_port!,
            payloadHex: r.payload!,
            confirmed: r.confirmed!,
            enqueuedAt: ms(r.created_at)!,
            status: r.status!,
            attempts: r.attempts!,
            dueAt: ms(r.not_before)!,
          };
    queues[deviceKey(r.tenant_id, r.dev_eui)] = {
      tenantId: r.tenant_id,
      devEui: r.dev_eui,
      gatewayId: r.gateway_id,
      job,
      lastConfirmed:
        r.lc_f_port === null || r.lc_payload === null || r.lc_at === null
          ? null
          : { fPort: r.lc_f_port, payloadHex: r.lc_payload, at: r.lc_at.getTime() },
    };
  }
  return queues;
}

/**
 * Writes what the reducer changed: a job that left its device (confirmed, dead-lettered, superseded) gets its
 * final status first (the one-pending index), then the device's current job is inserted or updated, then the
 * device's gateway and last confirmed payload. One small statement per changed device: displays change a few
 * times an hour, not thousands of times a second.
 */
export async function saveQueues(
  client: PoolClient,
  before: Readonly<Record<string, DeviceQueue>>,
  after: DownlinkState,
  effects: readonly DownlinkEffect[],
  meta: ReadonlyMap<string, JobMeta>,
): Promise<void> {
  const endedBy = new Map<string, DownlinkEffect>();
  for (const e of effects)
    if (
      e.type === 'downlink-confirmed' ||
      e.type === 'downlink-dead-lettered' ||
      e.type === 'downlink-superseded'
    )
      endedBy.set(e.jobId, e);
  for (const [key, b] of Object.entries(before)) {
    const a = after.devices[key];
    if (!a) continue;
    const old = b.job;
    if (old && a.job?.jobId !== old.jobId) {
      const end = endedBy.get(old.jobId);
      const status =
        end?.type === 'downlink-confirmed'
          ? 'acked'
          : end?.type === 'downlink-dead-lettered'
            ? 'failed'
            : 'superseded';
      await client.query(
        `UPDATE downlink_jobs
            SET status = $3, updated_at = now(),
                confirmed_at = CASE WHEN $3 = 'acked' THEN to_timestamp($4::float8 / 1000.0) END,
                last_error = CASE WHEN $3 = 'failed' THEN $5 ELSE last_error END
          WHERE tenant_id = $1 AND id = $2`,
        [
          b.tenantId,
          old.jobId,
          status,
          end?.type === 'downlink-confirmed' ? end.at : null,
          `no confirmation after ${old.attempts} attempts`,
        ],
      );
    }
    const job = a.job;
    if (job && old?.jobId !== job.jobId) {
      const m = meta.get(job.jobId);
      await client.query(
        `INSERT INTO downlink_jobs (tenant_id, id, dev_eui, space_id, f_port, payload, confirmed, reason, status,
                                    dedupe_key, correlation_id, attempts, not_before, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'), $7, $8, $9, $10, $11, $12, to_timestamp($13::float8 / 1000.0),
                 to_timestamp($14::float8 / 1000.0), now())
         ON CONFLICT (tenant_id, id) DO UPDATE
           SET status = excluded.status, attempts = excluded.attempts, not_before = excluded.not_before,
               updated_at = now()`,
        [
          a.tenantId,
          job.jobId,
          a.devEui,
          m?.spaceId ?? null,
          job.fPort,
          job.payloadHex,
          job.confirmed,
          m?.reason ?? 'state-change',
          job.status,
          job.requestId,
          job.correlationId,
          job.attempts,
          job.dueAt,
          job.enqueuedAt,
        ],
      );
    } else if (
      job &&
      old &&
      (job.status !== old.status || job.attempts !== old.attempts || job.dueAt !== old.dueAt)
    ) {
      await client.query(
        `UPDATE downlink_jobs
            SET status = $3, attempts = $4, not_before = to_timestamp($5::float8 / 1000.0), updated_at = now(),
                chirpstack_queue_id = CASE WHEN $4 > 0 THEN id::text ELSE chirpstack_queue_id END
          WHERE tenant_id = $1 AND id = $2`,
        [a.tenantId, job.jobId, job.status, job.attempts, job.dueAt],
      );
    }
    if (a.gatewayId !== b.gatewayId || a.lastConfirmed?.at !== b.lastConfirmed?.at)
      await client.query(
        `UPDATE display_states
            SET gateway_id = $3, last_confirmed_f_port = $4, last_confirmed_payload = decode($5, 'hex'),
                last_confirmed_at = to_timestamp($6::float8 / 1000.0), updated_at = now()
          WHERE tenant_id = $1 AND dev_eui = $2`,
        [
          a.tenantId,
          a.devEui,
          a.gatewayId,
          a.lastConfirmed?.fPort ?? null,
          a.lastConfirmed?.payloadHex ?? null,
          a.lastConfirmed?.at ?? null,
        ],
      );
  }
}

/**
 * Locks the token buckets of the given gateways and tenants (rows created full when missing), in key order so
 * two ticks cannot deadlock, and returns them in the reducer's shape.
 */
export async function lockBuckets(
  client: PoolClient,
  gateways: readonly string[],
  tenants: readonly string[],
  policy: DownlinkPolicy,
  now: number,
): Promise<Pick<DownlinkState, 'gatewayBuckets' | 'tenantBuckets'>> {
  const keys = [
    ...[...new Set(gateways)].map((k) => ({ scope: 'gateway', key: k, tokens: policy.gatewayPerMinute })),
    ...[...new Set(tenants)].map((k) => ({ scope: 'tenant', key: k, tokens: policy.tenantPerMinute })),
  ];
  const result: Pick<DownlinkState, 'gatewayBuckets' | 'tenantBuckets'> = {
    gatewayBuckets: {},
    tenantBuckets: {},
  };
  if (keys.length === 0) return result;
  const params = [keys.map((k) => k.scope), keys.map((k) => k.key), keys.map((k) => k.tokens)];
  await client.query(
    `INSERT INTO downlink_buckets (scope, key, tokens, updated_ms)
     SELECT s, k, t, $4 FROM unnest($1::text[], $2::text[], $3::float8[]) AS b(s, k, t)
     ON CONFLICT DO NOTHING`,
    [...params, now],
  );
  const { rows } = await client.query<{ scope: string; key: string; tokens: number; updated_ms: string }>(
    `SELECT b.scope, b.key, b.tokens, b.updated_ms FROM downlink_buckets b
       JOIN unnest($1::text[], $2::text[]) AS k(s, k) ON b.scope = k.s AND b.key = k.k
      ORDER BY b.scope, b.key
        FOR UPDATE OF b`,
    [params[0], params[1]],
  );
  for (const r of rows) {
    const bucket: TokenBucket = { tokens: r.tokens, updatedAt: Number(r.updated_ms) };
    if (r.scope === 'gateway') result.gatewayBuckets[r.key] = bucket;
    else result.tenantBuckets[r.key] = bucket;
  }
  return result;
}

export async function saveBuckets(
  client: PoolClient,
  state: Pick<DownlinkState, 'gatewayBuckets' | 'tenantBuckets'>,
): Promise<void> {
  const rows = [
    ...Object.entries(state.gatewayBuckets).map(([key, b]) => ({ scope: 'gateway', key, b })),
    ...Object.entries(state.tenantBuckets).map(([key, b]) => ({ scope: 'tenant', key, b })),
  ];
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO downlink_buckets (scope, key, tokens, updated_ms)
     SELECT s, k, t, u FROM unnest($1::text[], $2::text[], $3::float8[], $4::bigint[]) AS b(s, k, t, u)
     ON CONFLICT (scope, key) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms`,
    [
      rows.map((r) => r.scope),
      rows.map((r) => r.key),
      rows.map((r) => Math.max(0, r.b.tokens)),
      rows.map((r) => Math.round(r.b.updatedAt)),
    ],
  );
}
