import { Counter, Histogram, Registry } from 'prom-client';

/** The bridge's Prometheus metrics; one registry per service instance so tests can read exact values. */
export function createIngestMetrics() {
  const registry = new Registry();
  return {
    registry,
    received: new Counter({
      name: 'ingest_events_received_total',
      help: 'ChirpStack events received',
      labelNames: ['source', 'event'],
      registers: [registry],
    }),
    published: new Counter({
      name: 'ingest_events_published_total',
      help: 'Records acknowledged by Kafka',
      labelNames: ['source', 'tenant'],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'ingest_events_dead_lettered_total',
      help: 'Events sent to the dead-letter topic',
      labelNames: ['source', 'code'],
      registers: [registry],
    }),
    ignored: new Counter({
      name: 'ingest_events_ignored_total',
      help: 'Event types the bridge does not handle yet',
      labelNames: ['source', 'event'],
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'ingest_publish_seconds',
      help: 'Time from receipt to Kafka acknowledgement',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
