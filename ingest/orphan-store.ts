import type { Pool } from '../lib/db/pool.js';
import type { Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import type { IngestMetrics } from './metrics.js';
import type { OrphanSighting, OrphanSink } from './orphans.js';

export interface PgOrphanSinkOptions {
  /** Sightings are written at most this often, ms (one statement for every DevEUI seen meanwhile). */
  flushMs?: number;
  /** DevEUIs waiting to be written at most; a sighting of a new DevEUI beyond that is dropped and counted. */
  maxPending?: number;
}

interface Pending {
  latest: OrphanSighting;
  firstSeenAt: number;
  uplinks: number;
}

// One row per DevEUI, attributed to the tenant owning its ChirpStack application. first_seen_at is kept,
// last_seen_at and uplink_count only move forward, the last uplink's radio values and what ChirpStack reports
// (its tenant, application, device name) are refreshed. unnest(): one statement for the whole batch.
const upsert = `
INSERT INTO orphan_devices AS o (tenant_id, dev_eui, application_id, chirpstack_tenant_id, chirpstack_tenant_name,
  device_name, first_seen_at, last_seen_at, uplink_count, last_f_port, last_rssi, last_snr, last_payload)
SELECT a.tenant_id, s.dev_eui, s.application_id, s.cs_tenant_id, s.cs_tenant_name, s.device_name, s.first_seen,
       s.last_seen, s.uplinks, s.f_port, s.rssi, s.snr, s.payload
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
              $8::bigint[], $9::int[], $10::int[], $11::float8[], $12::bytea[])
       AS s(dev_eui, application_id, cs_tenant_id, cs_tenant_name, device_name, first_seen, last_seen, uplinks,
            f_port, rssi, snr, payload)
  JOIN chirpstack_applications a ON a.application_id = s.application_id
ON CONFLICT (tenant_id, dev_eui) DO UPDATE SET
  application_id = EXCLUDED.application_id,
  chirpstack_tenant_id = coalesce(EXCLUDED.chirpstack_tenant_id, o.chirpstack_tenant_id),
  chirpstack_tenant_name = coalesce(EXCLUDED.chirpstack_tenant_name, o.chirpstack_tenant_name),
  device_name = coalesce(EXCLUDED.device_name, o.device_name),
  last_seen_at = greatest(o.last_seen_at, EXCLUDED.last_seen_at),
  uplink_count = o.uplink_count + EXCLUDED.uplink_count,
  last_f_port = coalesce(EXCLUDED.last_f_port, o.last_f_port),
  last_rssi = coalesce(EXCLUDED.last_rssi, o.last_rssi),
  last_snr = coalesce(EXCLUDED.last_snr, o.last_snr),
  last_payload = coalesce(EXCLUDED.last_payload, o.last_payload)
RETURNING dev_eui`;

/**
 * OrphanSink on table orphan_devices, through the pipeline role. `note` only buffers (it never waits for the
 * database, so an orphan flood cannot slow acknowledgements); sightings are folded per DevEUI and written every
 * `flushMs` in one statement, and on `stop`. Best effort: the orphan topic is the durable record, a failed write
 * is logged and counted (`ingest_orphan_devices_written_total{result}`), never retried. A DevEUI whose ChirpStack
 * application belongs to no tenant (chirpstack_applications) cannot be attributed and is counted `unattributed`.
 */
export class PgOrphanSink implements OrphanSink, Service {
  readonly #pool: Pool;
  readonly #logger: Logger;
  readonly #metrics: Pick<IngestMetrics, 'orphanDevicesWritten'>;
  readonly #maxPending: number;
  readonly #timer: NodeJS.Timeout;
  #pending = new Map<string, Pending>();
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    pool: Pool,
    logger: Logger,
    metrics: Pick<IngestMetrics, 'orphanDevicesWritten'>,
    options: PgOrphanSinkOptions = {},
  ) {
    this.#pool = pool;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#maxPending = options.maxPending ?? 10_000;
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 1_000);
    this.#timer.unref();
  }

  async note(s: OrphanSighting): Promise<void> {
    const devEui = s.devEui.toUpperCase();
    const previous = this.#pending.get(devEui);
    if (!previous && this.#pending.size >= this.#maxPending) {
      this.#metrics.orphanDevicesWritten.inc({ result: 'dropped' });
      return;
    }
    this.#pending.set(devEui, {
      latest: { ...s, devEui, uplink: s.uplink ?? previous?.latest.uplink },
      firstSeenAt: Math.min(previous?.firstSeenAt ?? s.seenAt, s.seenAt),
      uplinks: (previous?.uplinks ?? 0) + (s.eventType === 'up' ? 1 : 0),
    });
  }

  /** Writes what is pending; resolves when written (or failed, logged). One write at a time. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending = new Map();
    const column = <T>(pick: (p: Pending) => T) => batch.map(pick);
    try {
      const { rowCount } = await this.#pool.query(upsert, [
        column((p) => p.latest.devEui),
        column((p) => p.latest.applicationId),
        column((p) => p.latest.chirpstackTenantId),
        column((p) => p.latest.chirpstackTenantName),
        column((p) => p.latest.deviceName),
        column((p) => new Date(p.firstSeenAt)),
        column((p) => new Date(p.latest.seenAt)),
        column((p) => p.uplinks),
        column((p) => p.latest.uplink?.fPort ?? null),
        column((p) => (p.latest.uplink?.rssi == null ? null : Math.round(p.latest.uplink.rssi))),
        column((p) => p.latest.uplink?.snr ?? null),
        column((p) => p.latest.uplink?.payload ?? null),
      ]);
      const written = rowCount ?? 0;
      this.#metrics.orphanDevicesWritten.inc({ result: 'written' }, written);
      if (batch.length > written) {
        this.#metrics.orphanDevicesWritten.inc({ result: 'unattributed' }, batch.length - written);
      }
    } catch (error) {
      this.#metrics.orphanDevicesWritten.inc({ result: 'failed' }, batch.length);
      this.#logger.error({ err: error, devices: batch.length }, 'writing orphan devices failed');
    }
  }
}
