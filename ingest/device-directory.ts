import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';
import { LruCache } from '../lib/lru.js';

/** The lifecycle of a sensor or display (the `status` column of sensor_devices and display_devices). */
export const deviceStatuses = ['active', 'inactive', 'decommissioned'] as const;
export type DeviceStatus = (typeof deviceStatuses)[number];

export interface DeviceAssignment {
  tenantId: string;
  /** The space the device's events are attributed to; null when unassigned, or while the device is inactive. */
  spaceId: string | null;
  /** A parking sensor (its uplinks carry readings) or a display beside a space (it reports downlink outcomes). */
  kind: 'sensor' | 'display';
  /** The sensor's payload codec; null for displays. */
  codec: string | null;
  /** See `assignmentOf` for what each status means to ingestion. */
  status: DeviceStatus;
}

export interface DeviceRow {
  tenant_id: string;
  space_id: string | null;
  codec: string | null;
  kind: DeviceAssignment['kind'];
  status: string;
}

/**
 * What a device's status means for its events (pure; the bridge acts on the result):
 * - `active`: resolved to its tenant, space and codec.
 * - `inactive` (taken out of service for now, e.g. a faulty or relocated sensor; ChirpStack sync disables it):
 *   still the tenant's, so its events are published with the tenant — battery, joins, and the outcomes of the
 *   display processor's out-of-service downlinks keep flowing — but not attributed to its space (`spaceId`
 *   null), so its readings do not drive the space's occupancy.
 * - `decommissioned` (archived for good): resolved only so the bridge can refuse its events as a dead letter
 *   with code DEVICE_DECOMMISSIONED, the former tenant and the original bytes — kept for an operator, never
 *   published as the tenant's data, and never treated as an orphan (the DevEUI is still registered).
 * An unknown status (a value added to the column later) counts as decommissioned: refused, nothing lost.
 */
export function assignmentOf(row: DeviceRow): DeviceAssignment {
  const status = (deviceStatuses as readonly string[]).includes(row.status)
    ? (row.status as DeviceStatus)
    : 'decommissioned';
  return {
    tenantId: row.tenant_id,
    spaceId: status === 'active' ? row.space_id : null,
    kind: row.kind,
    codec: row.codec,
    status,
  };
}

/**
 * A bounded read-through cache of one lookup, invalidated by key (`forget`, on a change notification) or as a
 * whole (`clear`, when notifications may have been missed). A lookup that was in flight while an invalidation
 * arrived is returned but not cached, so a change committed during the query is never masked by its old result.
 */
class InvalidatedCache<V> {
  readonly #cache: LruCache<string, V>;
  #epoch = 0;

  constructor(maxEntries: number) {
    this.#cache = new LruCache(maxEntries);
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const epoch = this.#epoch;
    const value = await load();
    if (epoch === this.#epoch) this.#cache.set(key, value);
    return value;
  }

  forget(key: string): void {
    this.#epoch += 1;
    this.#cache.delete(key);
  }

  clear(): void {
    this.#epoch += 1;
    this.#cache.clear();
  }

  get size(): number {
    return this.#cache.size;
  }
}

/**
 * DevEUI -> tenant, space, codec and status, read through the pipeline role with a bounded cache. Unknown DevEUIs are
 * cached too (as null) so a flood from an unregistered device does not hit the database per frame. The cache is
 * kept fresh by the `sensor_devices_changed` notification (`forget`; see ingest/change-listener.ts).
 */
export class DeviceDirectory {
  readonly #pool: Pool;
  readonly #cache: InvalidatedCache<DeviceAssignment | null>;

  constructor(pool: Pool, maxEntries = 50_000) {
    this.#pool = pool;
    this.#cache = new InvalidatedCache(maxEntries);
  }

  resolve(devEui: string): Promise<DeviceAssignment | null> {
    const key = devEui.toUpperCase();
    return this.#cache.get(key, async () => {
      let rows: DeviceRow[];
      try {
        // DevEUIs are unique across both tables on a LoRaWAN network; a sensor wins should both ever hold one.
        // A status change notifies sensor_devices_changed like any assignment change (triggers of
        // 1732700000000_ingest.sql and 1733200000000_display-notify.sql), so `forget` keeps this fresh.
        ({ rows } = await this.#pool.query(
          `SELECT tenant_id, space_id, codec, 'sensor' AS kind, status FROM sensor_devices WHERE dev_eui = $1
           UNION ALL
           SELECT tenant_id, space_id, NULL, 'display', status FROM display_devices WHERE dev_eui = $1
           ORDER BY kind DESC LIMIT 1`,
          [key],
        ));
      } catch (error) {
        throw new PlatformError('DB_UNAVAILABLE', 'device lookup failed', { cause: error, retriable: true });
      }
      const row = rows[0];
      return row ? assignmentOf(row) : null;
    });
  }

  forget(devEui: string): void {
    this.#cache.forget(devEui.toUpperCase());
  }

  clear(): void {
    this.#cache.clear();
  }

  get size(): number {
    return this.#cache.size;
  }
}

/**
 * ChirpStack application id -> the platform tenant that owns it (table chirpstack_applications), with a bounded
 * cache kept fresh by `chirpstack_applications_changed`. How a webhook from an unregistered device is attributed.
 */
export class ApplicationDirectory {
  readonly #pool: Pool;
  readonly #cache: InvalidatedCache<string | null>;

  constructor(pool: Pool, maxEntries = 10_000) {
    this.#pool = pool;
    this.#cache = new InvalidatedCache(maxEntries);
  }

  tenantOf(applicationId: string): Promise<string | null> {
    return this.#cache.get(applicationId, async () => {
      try {
        const { rows } = await this.#pool.query<{ tenant_id: string }>(
          'SELECT tenant_id FROM chirpstack_applications WHERE application_id = $1',
          [applicationId],
        );
        return rows[0]?.tenant_id ?? null;
      } catch (error) {
        throw new PlatformError('DB_UNAVAILABLE', 'application lookup failed', {
          cause: error,
          retriable: true,
        });
      }
    });
  }

  forget(applicationId: string): void {
    this.#cache.forget(applicationId);
  }

  clear(): void {
    this.#cache.clear();
  }
}
