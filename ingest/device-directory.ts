import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';
import { LruCache } from '../lib/lru.js';

export interface DeviceAssignment {
  tenantId: string;
  spaceId: string | null;
  codec: string;
}

/**
 * DevEUI -> tenant, space and codec, read through the pipeline role with a bounded cache. Unknown DevEUIs are
 * cached too (as null) so a flood from an unregistered device does not hit the database per frame; `forget`
 * drops an entry when its assignment changes.
 */
export class DeviceDirectory {
  readonly #pool: Pool;
  readonly #cache: LruCache<string, DeviceAssignment | null>;

  constructor(pool: Pool, maxEntries = 50_000) {
    this.#pool = pool;
    this.#cache = new LruCache(maxEntries);
  }

  async resolve(devEui: string): Promise<DeviceAssignment | null> {
    const key = devEui.toUpperCase();
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    let rows: Array<{ tenant_id: string; space_id: string | null; codec: string }>;
    try {
      ({ rows } = await this.#pool.query(
        'SELECT tenant_id, space_id, codec FROM sensor_devices WHERE dev_eui = $1',
        [key],
      ));
    } catch (error) {
      throw new PlatformError('DB_UNAVAILABLE', 'device lookup failed', { cause: error, retriable: true });
    }
    const row = rows[0];
    const assignment = row ? { tenantId: row.tenant_id, spaceId: row.space_id, codec: row.codec } : null;
    this.#cache.set(key, assignment);
    return assignment;
  }

  forget(devEui: string): void {
    this.#cache.delete(devEui.toUpperCase());
  }
}
