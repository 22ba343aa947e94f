import { LruCache } from '../lib/lru.js';

/** What the bridge knows about a DevEUI the platform does not: enough for an operator to claim it. */
export interface OrphanSighting {
  devEui: string;
  applicationId: string;
  chirpstackTenantId: string | null;
  chirpstackTenantName: string | null;
  deviceName: string | null;
  eventType: string;
  /** Epoch ms. */
  seenAt: number;
  /** Of an uplink: its fPort, best RSSI (dBm) and SNR (dB) over the gateways, and raw payload. */
  uplink?: { fPort: number; rssi: number | null; snr: number | null; payload: Buffer } | undefined;
}

/**
 * Where unknown devices are recorded, beside their uplinks on the orphan topic (which is the durable copy).
 * Called after the event is durable; best effort: a failure is logged and counted, never blocks ingestion.
 * The database-backed implementation is PgOrphanSink (ingest/orphan-store.ts, table orphan_devices).
 */
export interface OrphanSink {
  note(sighting: OrphanSighting): Promise<void>;
}

/** An in-process OrphanSink (tests, tools): a bounded LRU of the latest sightings. */
export class MemoryOrphanSink implements OrphanSink {
  readonly #seen: LruCache<string, OrphanSighting & { count: number; firstSeenAt: number }>;

  constructor(maxEntries = 10_000) {
    this.#seen = new LruCache(maxEntries);
  }

  async note(s: OrphanSighting): Promise<void> {
    const previous = this.#seen.get(s.devEui);
    this.#seen.set(s.devEui, {
      ...s,
      count: (previous?.count ?? 0) + 1,
      firstSeenAt: previous?.firstSeenAt ?? s.seenAt,
    });
  }

  get(devEui: string) {
    return this.#seen.get(devEui.toUpperCase());
  }

  get size(): number {
    return this.#seen.size;
  }
}
