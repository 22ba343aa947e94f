/**
 * Duplicate suppression for the bridge. ChirpStack delivers the same event more than once (several gateways
 * heard the frame and arrived after ChirpStack's own deduplication window, MQTT QoS 1 redelivery, the same event
 * on MQTT and on ChirpStack's Kafka integration), so an event is dropped when one of its keys was already made
 * durable: its event id (ChirpStack's deduplicationId) and, for uplinks, tenant + DevEUI + DevAddr + fCnt.
 *
 * The promise that makes this safe: a key is remembered only after its record is durable in Kafka. A copy
 * arriving while the first copy is still being published waits for that outcome: durable -> it is a duplicate;
 * failed -> it goes ahead itself. So a failure can never turn a redelivery into a loss.
 */

/** Keys remembered for `ttlMs` each, at most `maxEntries` (the oldest go first): memory is bounded. */
export class TtlWindow {
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #expiry = new Map<string, number>();

  constructor(maxEntries: number, ttlMs: number, now: () => number = Date.now) {
    if (maxEntries < 1) throw new RangeError('TtlWindow maxEntries must be at least 1');
    this.#max = maxEntries;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get size(): number {
    return this.#expiry.size;
  }

  has(key: string): boolean {
    const expiresAt = this.#expiry.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.#now()) return true;
    this.#expiry.delete(key);
    return false;
  }

  add(key: string): void {
    const now = this.#now();
    this.#expiry.delete(key);
    this.#expiry.set(key, now + this.#ttlMs);
    // Insertion order is expiry order (one TTL for all): expired and surplus entries are at the front.
    for (const [oldest, expiresAt] of this.#expiry) {
      if (expiresAt > now && this.#expiry.size <= this.#max) break;
      this.#expiry.delete(oldest);
    }
  }
}

/**
 * Keys shared by every bridge instance (Redis in production: `SET key 1 NX EX ttl`). Best effort: when the store
 * fails, the bridge publishes (a possible duplicate, absorbed downstream by idempotent writes keyed by event id)
 * rather than risk losing an event.
 */
export interface SharedDedupStore {
  /** True when any of the keys was made durable by some instance within the TTL. */
  anySeen(keys: readonly string[]): Promise<boolean>;
  remember(keys: readonly string[], ttlSeconds: number): Promise<void>;
}

/** A claim on keys while their record is being published; exactly one of `commit` / `abort` must follow. */
export interface DedupClaim {
  /** The record is durable: remember the keys, and tell copies waiting on this one that they are duplicates. */
  commit(): Promise<void>;
  /** Publishing failed: release the keys so a waiting copy (or the redelivery) publishes instead. */
  abort(): void;
}

export interface DeduplicatorOptions {
  maxEntries: number;
  ttlMs: number;
  shared?: SharedDedupStore | undefined;
  onSharedError?: (error: unknown) => void;
  now?: () => number;
}

export class Deduplicator {
  readonly #window: TtlWindow;
  readonly #ttlSeconds: number;
  readonly #shared: SharedDedupStore | undefined;
  readonly #onSharedError: (error: unknown) => void;
  /** Keys whose first copy is being published right now -> resolves true when it became durable. */
  readonly #pending = new Map<string, Promise<boolean>>();

  constructor(options: DeduplicatorOptions) {
    this.#window = new TtlWindow(options.maxEntries, options.ttlMs, options.now);
    this.#ttlSeconds = Math.max(1, Math.ceil(options.ttlMs / 1000));
    this.#shared = options.shared;
    this.#onSharedError = options.onSharedError ?? (() => {});
  }

  /** Keys in flight (bounded by the sources' in-flight limits). */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  /**
   * Null when the event is a duplicate of one already durable; otherwise a claim on its keys. Claims are taken
   * synchronously after the local checks, so two copies racing in this process cannot both pass.
   */
  async begin(keys: readonly string[]): Promise<DedupClaim | null> {
    for (;;) {
      const first = keys.map((k) => this.#pending.get(k)).find((p) => p !== undefined);
      if (first) {
        if (await first) return null;
        continue;
      }
      if (keys.some((k) => this.#window.has(k))) return null;
      let settle!: (durable: boolean) => void;
      const outcome = new Promise<boolean>((resolve) => (settle = resolve));
      for (const k of keys) this.#pending.set(k, outcome);
      const release = (durable: boolean) => {
        for (const k of keys) if (this.#pending.get(k) === outcome) this.#pending.delete(k);
        settle(durable);
      };
      if (this.#shared) {
        let seen = false;
        try {
          seen = await this.#shared.anySeen(keys);
        } catch (error) {
          this.#onSharedError(error);
        }
        if (seen) {
          for (const k of keys) this.#window.add(k);
          release(true);
          return null;
        }
      }
      return {
        commit: async () => {
          for (const k of keys) this.#window.add(k);
          release(true);
          if (!this.#shared) return;
          try {
            await this.#shared.remember(keys, this.#ttlSeconds);
          } catch (error) {
            this.#onSharedError(error);
          }
        },
        abort: () => release(false),
      };
    }
  }
}
