import type { Pool } from '../../lib/db/pool.js';
import type { Outcome, Snapshot, SyncItem } from './decide.js';

/**
 * chirpstack_sync_items through the pipeline role (it writes for every tenant). Claiming moves a row's
 * next_attempt_at by a lease, in one statement with SKIP LOCKED, so two workers never send the same row at once
 * and a worker that dies mid-call leaves the row due again when the lease ends.
 */
export interface SyncRepository {
  /** Up to `limit` due rows, oldest due first; `tenantId` restricts to one tenant (tests). */
  claim(limit: number, leaseMs: number, tenantId?: string): Promise<SyncItem[]>;
  snapshot(item: SyncItem): Promise<Snapshot | null>;
  /** Records an attempt; status, attempts, backoff and error apply only if the row was not changed meanwhile. */
  record(item: SyncItem, outcome: Outcome): Promise<void>;
  /**
   * After a delete: the rows of other tenants for the same EUI become pending again as a create (their version
   * moves, so an attempt in flight records nothing over it).
   */
  resendElsewhere(item: SyncItem): Promise<void>;
}

export function createSyncRepository(pool: Pool): SyncRepository {
  /** Whether another tenant has this EUI registered now (the pipeline role reads every tenant). */
  async function registeredElsewhere(item: SyncItem): Promise<Snapshot | null> {
    const { rows } = await pool.query<{ n: number }>(
      item.kind === 'gateway'
        ? 'SELECT count(*)::int AS n FROM gateways WHERE gw_eui = $1 AND tenant_id <> $2'
        : `SELECT (SELECT count(*) FROM sensor_devices WHERE dev_eui = $1 AND tenant_id <> $2)
                + (SELECT count(*) FROM display_devices WHERE dev_eui = $1 AND tenant_id <> $2)::int AS n`,
      [item.eui, item.tenantId],
    );
    return Number(rows[0]!.n) > 0 ? { kind: 'registered-elsewhere' } : null;
  }

  return {
    async resendElsewhere(item) {
      await pool.query(
        `UPDATE chirpstack_sync_items
            SET version = version + 1, status = 'pending', in_chirpstack = false, attempts = 0,
                next_attempt_at = now(), updated_at = now()
          WHERE kind = $1 AND eui = $2 AND tenant_id <> $3`,
        [item.kind, item.eui, item.tenantId],
      );
    },

    async claim(limit, leaseMs, tenantId) {
      const { rows } = await pool.query<{
        tenant_id: string;
        kind: 'device' | 'gateway';
        eui: string;
        version: string;
        in_chirpstack: boolean;
        attempts: number;
      }>(
        `WITH due AS (
           SELECT tenant_id, kind, eui FROM chirpstack_sync_items
            WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
              AND ($3::uuid IS NULL OR tenant_id = $3::uuid)
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE chirpstack_sync_items i
            SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000), last_attempt_at = now()
           FROM due WHERE i.tenant_id = due.tenant_id AND i.kind = due.kind AND i.eui = due.eui
         RETURNING i.tenant_id, i.kind, i.eui, i.version, i.in_chirpstack, i.attempts`,
        [limit, leaseMs, tenantId ?? null],
      );
      return rows.map((r) => ({
        tenantId: r.tenant_id,
        kind: r.kind,
        eui: r.eui,
        version: Number(r.version),
        inChirpstack: r.in_chirpstack,
        attempts: r.attempts,
      }));
    },

    async snapshot(item) {
      if (item.kind === 'gateway') {
        const { rows } = await pool.query<{
          gw_eui: string;
          name: string;
          latitude: number | null;
          longitude: number | null;
          chirpstack_tenant_id: string | null;
        }>(
          `SELECT g.gw_eui, g.name, g.latitude, g.longitude,
                  (SELECT a.chirpstack_tenant_id FROM chirpstack_applications a
                    WHERE a.tenant_id = g.tenant_id AND a.chirpstack_tenant_id IS NOT NULL
                    ORDER BY a.created_at, a.application_id LIMIT 1) AS chirpstack_tenant_id
             FROM gateways g WHERE g.tenant_id = $1 AND g.gw_eui = $2`,
          [item.tenantId, item.eui],
        );
        const r = rows[0];
        if (!r) return registeredElsewhere(item);
        return r
          ? {
              kind: 'gateway',
              gwEui: r.gw_eui,
              name: r.name,
              latitude: r.latitude,
              longitude: r.longitude,
              chirpstackTenantId: r.chirpstack_tenant_id,
            }
          : null;
      }
      // A DevEUI is a sensor or a display (each globally unique); a display may name its own application.
      const { rows } = await pool.query<{
        dev_eui: string;
        name: string | null;
        category: 'sensor' | 'display';
        disabled: boolean;
        application_id: string | null;
        device_profile_id: string | null;
      }>(
        `WITH d AS (
           SELECT tenant_id, dev_eui, name, 'sensor' AS category, status, archived_at, NULL::text AS app
             FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2
           UNION ALL
           SELECT tenant_id, dev_eui, name, 'display', status, archived_at, chirpstack_application_id
             FROM display_devices WHERE tenant_id = $1 AND dev_eui = $2)
         SELECT d.dev_eui, d.name, d.category, (d.status <> 'active' OR d.archived_at IS NOT NULL) AS disabled,
                a.application_id, a.device_profile_id
           FROM d LEFT JOIN LATERAL (
             SELECT application_id, device_profile_id FROM chirpstack_applications
              WHERE tenant_id = d.tenant_id AND (d.app IS NULL OR application_id = d.app)
              ORDER BY created_at, application_id LIMIT 1) a ON true
          LIMIT 1`,
        [item.tenantId, item.eui],
      );
      const r = rows[0];
      if (!r) return registeredElsewhere(item);
      return r
        ? {
            kind: 'device',
            devEui: r.dev_eui,
            name: r.name,
            category: r.category,
            disabled: r.disabled,
            applicationId: r.application_id,
            deviceProfileId: r.device_profile_id,
          }
        : null;
    },

    async record(item, o) {
      await pool.query(
        `UPDATE chirpstack_sync_items SET
           in_chirpstack = $4,
           synced_version = CASE WHEN $5::bigint IS NULL THEN synced_version ELSE greatest(synced_version, $5::bigint) END,
           synced_at = CASE WHEN $5::bigint IS NULL THEN synced_at ELSE now() END,
           status = CASE WHEN version = $6 THEN $7 ELSE status END,
           attempts = CASE WHEN version = $6 THEN $8 ELSE attempts END,
           next_attempt_at = CASE WHEN version <> $6 THEN next_attempt_at
                                  WHEN $9::double precision IS NULL THEN 'infinity'
                                  ELSE now() + make_interval(secs => $9::double precision / 1000) END,
           last_error_code = CASE WHEN version = $6 THEN $10 ELSE last_error_code END,
           last_error = CASE WHEN version = $6 THEN $11 ELSE last_error END,
           updated_at = now()
         WHERE tenant_id = $1 AND kind = $2 AND eui = $3`,
        [
          item.tenantId,
          item.kind,
          item.eui,
          o.inChirpstack,
          o.syncedVersion,
          item.version,
          o.status,
          o.attempts,
          o.retryInMs,
          o.lastErrorCode,
          o.lastError,
        ],
      );
    },
  };
}
