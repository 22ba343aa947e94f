import { randomUUID } from 'node:crypto';

/**
 * Duplicate suppression for the bridge. ChirpStack delivers the same event more than once (several gateways
 * heard the frame and arrived after ChirpStack's own deduplication window, MQTT QoS 1 redelivery, the same event
 * on MQTT and on ChirpStack's Kafka integration, several bridge instances subscribed to the same events), so an
 * event is dropped when one of its keys was already made durable: its event id (ChirpStack's deduplicationId)
 * and, for uplinks, tenant + DevEUI + DevAddr + fCnt.
 *
 * The promise that makes this safe: a key is remembered as done only after its record is durable in Kafka. A
 * copy arriving while the first copy is still being published — in this process or in another instance — waits
 * for that outcome: durable -> it is a duplicate; failed -> it goes ahead itself. So a failure can never turn a
 * redelivery into a loss.
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
 * What the shared store answered to a claim: `claimed` — every key was free and is now held by this claim
 * (until `inFlightMs` passes, so a crashed holder cannot block its keys for longer); `done` — some key was made
 * durable by some instance within the TTL; `in-flight` — some key is held by another claim right now.
 */
export type SharedClaimState = 'claimed' | 'done' | 'in-flight';

/**
 * Keys shared by every bridge instance (Redis in production, ingest/redis-dedup-store.ts). `claim` must be
 * atomic over all its keys: of two instances claiming the same key at once, exactly one gets `claimed`.
 * Best effort: when the store fails, the bridge publishes (a possible duplicate, absorbed downstream by
 * idempotent writes keyed by event id) rather than risk losing an event.
 */
export interface SharedDedupStore {
  claim(keys: readonly string[], token: string, inFlightMs: number): Promise<SharedClaimState>;
  /** The record is durable: the keys are `done` for `ttlSeconds`, whoever held them. */
  complete(keys: readonly string[], ttlSeconds: number): Promise<void>;
  /** Publishing failed: drops the keys this claim (`token`) still holds, so another copy may publish. */
  release(keys: readonly string[], token: string): Promise<void>;
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
  /**
   * How long a shared claim holds its keys while the record is being published, ms (default 5 000). A copy on
   * another instance waits at most about this long for the holder to finish (then its claim has expired and the
   * copy publishes): a crashed or stuck holder delays a copy, it never loses it.
   */
  inFlightMs?: number;
  onSharedError?: (error: unknown) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** A unique claim token (default a random UUID). */
  token?: () => string;
}

/** Polling delays while another instance holds a key: short first (publishes take milliseconds), then capped. */
const pollDelaysMs = [2, 5, 10, 20, 40, 80] as const;
const maxPollDelayMs = 100;

export class Deduplicator {
  readonly #window: TtlWindow;
  readonly #ttlSeconds: number;
  readonly #shared: SharedDedupStore | undefined;
  readonly #inFlightMs: number;
  readonly #onSharedError: (error: unknown) => void;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #token: () => string;
  /** Keys whose first copy is being published by this process -> resolves true when it became durable. */
  readonly #pending = new Map<string, Promise<boolean>>();

  constructor(options: DeduplicatorOptions) {
    this.#window = new TtlWindow(options.maxEntries, options.ttlMs, options.now);
    this.#ttlSeconds = Math.max(1, Math.ceil(options.ttlMs / 1000));
    this.#shared = options.shared;
    this.#inFlightMs = options.inFlightMs ?? 5_000;
    this.#onSharedError = options.onSharedError ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#token = options.token ?? randomUUID;
  }

  /** Keys in flight (bounded by the sources' in-flight limits). */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  /**
   * Null when the event is a duplicate of one already durable; otherwise a claim on its keys. Claims are taken
   * synchronously after the local checks, so two copies racing in this process cannot both pass; across
   * instances the shared store's atomic claim decides, and a copy whose keys another instance holds waits until
   * that claim is done (-> null), released or expired (-> it claims the keys itself).
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
      const token = this.#token();
      const state = this.#shared ? await this.#claimShared(keys, token) : 'claimed';
      if (state === 'done') {
        for (const k of keys) this.#window.add(k);
        release(true);
        return null;
      }
      const shared = this.#shared;
      return {
        commit: async () => {
          for (const k of keys) this.#window.add(k);
          release(true);
          if (!shared) return;
          try {
            await shared.complete(keys, this.#ttlSeconds);
          } catch (error) {
            this.#onSharedError(error);
          }
        },
        abort: () => {
          release(false);
          shared?.release(keys, token).catch((error: unknown) => this.#onSharedError(error));
        },
      };
    }
  }

  /**
   * Claims the keys in the shared store, waiting while another instance holds one of them. `claimed` also when
   * the store failed or the holder did not finish in time (publishing twice beats losing the event).
   */
  async #claimShared(keys: readonly string[], token: string): Promise<'claimed' | 'done'> {
    const shared = this.#shared!;
    // A holder's claim expires after inFlightMs; past that (and a margin for clocks and round trips) stop asking.
    const giveUpAt = this.#now() + this.#inFlightMs + 1_000;
    for (let attempt = 0; ; attempt++) {
      let state: SharedClaimState;
      try {
        state = await shared.claim(keys, token, this.#inFlightMs);
      } catch (error) {
        this.#onSharedError(error);
        return 'claimed';
      }
      if (state !== 'in-flight') return state;
      if (this.#now() >= giveUpAt) {
        this.#onSharedError(
          new Error(`dedup keys still claimed by another instance after ${this.#inFlightMs} ms`),
        );
        return 'claimed';
      }
      await this.#sleep(pollDelaysMs[attempt] ?? maxPollDelayMs);
    }
  }
}
