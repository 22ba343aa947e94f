import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The runtime's Prometheus metrics, labelled by processor (and partition for lag). `processed` counts records
 * read from Kafka, `applied` records whose effects were committed (duplicates skipped by the offset fence are
 * neither), `errors` failures by code and whether they were retried or dead-lettered.
 */
export function processorMetrics(registry: Registry): ProcessorMetrics {
  // One set per registry: several processors (and the relay) in one process share it, told apart by label.
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = createMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    lag: new Gauge({
      name: 'processor_consumer_lag',
      help: 'Records between the last applied offset and the partition high watermark',
      labelNames: ['processor', 'topic', 'partition'] as const,
      registers,
    }),
    processed: new Counter({
      name: 'processor_records_processed_total',
      help: 'Records read from Kafka',
      labelNames: ['processor'] as const,
      registers,
    }),
    applied: new Counter({
      name: 'processor_records_applied_total',
      help: 'Records whose effects were committed to PostgreSQL with their offset',
      labelNames: ['processor'] as const,
      registers,
    }),
    skipped: new Counter({
      name: 'processor_records_skipped_total',
      help: 'Redelivered records below the stored offset, skipped without effects',
      labelNames: ['processor'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'processor_errors_total',
      help: 'Failures by error code and handling (retried, dead-lettered)',
      labelNames: ['processor', 'code', 'handling'] as const,
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'processor_batch_duration_seconds',
      help: 'Time to apply one bounded batch, transaction included',
      labelNames: ['processor'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    outboxSent: new Counter({
      name: 'outbox_records_sent_total',
      help: 'Outbox rows published to Kafka and marked sent',
      labelNames: ['topic'] as const,
      registers,
    }),
  };
}

export type ProcessorMetrics = ReturnType<typeof createMetrics>;

const byRegistry = new WeakMap<Registry, ProcessorMetrics>();

const extraCounters = new WeakMap<Registry, Map<string, Counter<string>>>();

/**
 * One counter per registry and name: processors started several times against one registry (tests, two
 * consumers in one process) share it instead of failing on a duplicate registration.
 */
export function counterOnce<L extends string>(
  registry: Registry,
  config: { name: string; help: string; labelNames: readonly L[] },
): Counter<L> {
  let counters = extraCounters.get(registry);
  if (!counters) extraCounters.set(registry, (counters = new Map()));
  let counter = counters.get(config.name) as Counter<L> | undefined;
  if (!counter) {
    counter = new Counter({ ...config, registers: [registry] });
    counters.set(config.name, counter as Counter<string>);
  }
  return counter;
}
