import type { LiveEvent } from './envelope.js';

/** Something that takes a tenant's live events (a connection). `deliver` must not block and must not throw. */
export interface LiveSubscriber {
  readonly tenantId: string;
  deliver(event: LiveEvent): void;
}

/**
 * The per-instance fan-out: subscribers grouped by tenant, so publishing an event touches only its tenant's
 * connections — another tenant's connection is never even looked at. Synchronous and without a queue: each
 * subscriber bounds its own buffer (connection.ts).
 */
export class LiveHub {
  readonly #byTenant = new Map<string, Set<LiveSubscriber>>();
  #published = 0;

  subscribe(subscriber: LiveSubscriber): () => void {
    let set = this.#byTenant.get(subscriber.tenantId);
    if (!set) {
      set = new Set();
      this.#byTenant.set(subscriber.tenantId, set);
    }
    set.add(subscriber);
    return () => {
      const current = this.#byTenant.get(subscriber.tenantId);
      current?.delete(subscriber);
      if (current?.size === 0) this.#byTenant.delete(subscriber.tenantId);
    };
  }

  publish(event: LiveEvent): number {
    this.#published++;
    const set = this.#byTenant.get(event.tenantId);
    if (!set) return 0;
    for (const subscriber of set) subscriber.deliver(event);
    return set.size;
  }

  get published(): number {
    return this.#published;
  }

  get subscribers(): number {
    let n = 0;
    for (const set of this.#byTenant.values()) n += set.size;
    return n;
  }
}
