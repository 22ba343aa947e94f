import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';
import { LruCache } from '../lib/lru.js';

interface CachedSecret {
  secret: Buffer;
  /** Epoch ms; null: no expiry. */
  expiresAt: number | null;
}

interface Entry {
  secrets: CachedSecret[];
  /** Epoch ms after which the entry is read again even without a notification (a safety net). */
  staleAt: number;
}

export interface WebhookSecretStoreOptions {
  /** Tenants cached at most. */
  maxTenants?: number;
  /** Longest time an entry is trusted without a notification, ms. */
  maxAgeMs?: number;
}

/**
 * A tenant's valid webhook secrets (table webhook_secrets, read through the pipeline role): the current one and
 * the previous one until its `expires_at` (rotation keeps the previous valid so senders can switch over; a
 * further rotation revokes it). Bounded cache per tenant, dropped by `forget` on `webhook_secrets_changed`, and
 * re-read after `maxAgeMs` in any case; expiry is checked on every call, not only when loading.
 */
export class WebhookSecretStore {
  readonly #pool: Pool;
  readonly #cache: LruCache<string, Entry>;
  readonly #maxAgeMs: number;
  #epoch = 0;

  constructor(pool: Pool, options: WebhookSecretStoreOptions = {}) {
    this.#pool = pool;
    this.#cache = new LruCache(options.maxTenants ?? 10_000);
    this.#maxAgeMs = options.maxAgeMs ?? 60_000;
  }

  /** The secrets a signature of `tenantId` may be made with now; empty when the tenant has none. */
  async valid(tenantId: string, now = Date.now()): Promise<Buffer[]> {
    let entry = this.#cache.get(tenantId);
    if (!entry || entry.staleAt <= now) {
      const epoch = this.#epoch;
      entry = { secrets: await this.#load(tenantId), staleAt: now + this.#maxAgeMs };
      if (epoch === this.#epoch) this.#cache.set(tenantId, entry);
    }
    return entry.secrets.filter((s) => s.expiresAt === null || s.expiresAt > now).map((s) => s.secret);
  }

  forget(tenantId: string): void {
    this.#epoch += 1;
    this.#cache.delete(tenantId);
  }

  clear(): void {
    this.#epoch += 1;
    this.#cache.clear();
  }

  async #load(tenantId: string): Promise<CachedSecret[]> {
    try {
      const { rows } = await this.#pool.query<{ secret: Buffer; expires_at: Date | null }>(
        `SELECT secret, expires_at FROM webhook_secrets
          WHERE tenant_id = $1 AND status IN ('current', 'previous') AND (expires_at IS NULL OR expires_at > now())`,
        [tenantId],
      );
      return rows.map((r) => ({ secret: r.secret, expiresAt: r.expires_at ? r.expires_at.getTime() : null }));
    } catch (error) {
      throw new PlatformError('DB_UNAVAILABLE', 'webhook secret lookup failed', {
        cause: error,
        retriable: true,
      });
    }
  }
}
