import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The bridge's Prometheus metrics; one registry per service instance so tests can read exact values.
 * Every received event ends in exactly one of published, dead-lettered, deduplicated, ignored or
 * not-acknowledged (a retriable failure: the source redelivers, or the HTTP caller got a 503).
 */
export function createIngestMetrics() {
  const registry = new Registry();
  // Gauges read their value at scrape time from whoever registered a reader.
  let sinkPending = () => 0;
  let mqttInFlight = () => 0;
  return {
    setSinkPending: (read: () => number) => void (sinkPending = read),
    setInFlight: (read: () => number) => void (mqttInFlight = read),
    registry,
    received: new Counter({
      name: 'ingest_events_received_total',
      help: 'ChirpStack events received, by source and event type',
      labelNames: ['source', 'event'],
      registers: [registry],
    }),
    published: new Counter({
      name: 'ingest_events_published_total',
      help: 'Events acknowledged by Kafka on their topic (uplinks, orphan-uplinks, joins, device-status, downlink-outcomes)',
      labelNames: ['source', 'tenant', 'topic'],
      registers: [registry],
    }),
    deduplicated: new Counter({
      name: 'ingest_events_deduplicated_total',
      help: 'Duplicates acknowledged without publishing (same event id, or same tenant+DevEUI+DevAddr+fCnt)',
      labelNames: ['source', 'event'],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'ingest_events_dead_lettered_total',
      help: 'Events sent to the dead-letter topic, by error code',
      labelNames: ['source', 'tenant', 'code'],
      registers: [registry],
    }),
    ignored: new Counter({
      name: 'ingest_events_ignored_total',
      help: 'Events acknowledged on purpose without a record (ChirpStack log events: counted by chirpstack_log)',
      labelNames: ['source', 'event'],
      registers: [registry],
    }),
    notAcknowledged: new Counter({
      name: 'ingest_events_not_acknowledged_total',
      help: 'Events left unacknowledged after a retriable failure (Kafka or the database unavailable)',
      labelNames: ['source', 'code'],
      registers: [registry],
    }),
    chirpstackLog: new Counter({
      name: 'ingest_chirpstack_log_events_total',
      help: 'ChirpStack log events by level and code (e.g. UPLINK_CODEC errors)',
      labelNames: ['level', 'code'],
      registers: [registry],
    }),
    dedupStoreErrors: new Counter({
      name: 'ingest_dedup_store_errors_total',
      help: 'Shared (Redis) dedup store failures; the bridge then relies on its local window',
      registers: [registry],
    }),
    webhookRefused: new Counter({
      name: 'ingest_webhook_refused_total',
      help: 'v5 webhook requests refused with 401 before reaching the bridge (missing, unattributed, mismatch)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    orphanDevicesWritten: new Counter({
      name: 'ingest_orphan_devices_written_total',
      help: 'Orphan sightings written to orphan_devices (result=written), or not (unattributed, failed, dropped)',
      labelNames: ['result'],
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'ingest_publish_seconds',
      help: 'Time from receipt to Kafka acknowledgement',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    sinkPending: new Gauge({
      name: 'ingest_sink_pending_records',
      help: 'Records admitted to the Kafka sink and not yet acknowledged',
      registers: [registry],
      collect() {
        this.set(sinkPending());
      },
    }),
    mqttInFlight: new Gauge({
      name: 'ingest_mqtt_in_flight',
      help: 'MQTT messages received and not yet acknowledged',
      registers: [registry],
      collect() {
        this.set(mqttInFlight());
      },
    }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;

/** Sum of a counter over all label values (tests and benchmarks). */
export async function total(counter: Counter): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/**
 * Every event's outcome, summed over labels. Accounting identity the fault tests check: received =
 * published + dead-lettered + deduplicated + ignored + not acknowledged (redelivered later).
 */
export async function outcomeCounts(metrics: IngestMetrics) {
  return {
    received: await total(metrics.received),
    published: await total(metrics.published),
    deadLettered: await total(metrics.deadLettered),
    deduplicated: await total(metrics.deduplicated),
    ignored: await total(metrics.ignored),
    notAcknowledged: await total(metrics.notAcknowledged),
  };
}
