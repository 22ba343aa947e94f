import { avroDecoder } from '../runtime/avro-decoder.js';
import { connectProcessorProducer } from '../runtime/producer.js';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import { Registry, type Counter } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { registerValueSchema } from '../../lib/kafka/avro.js';
import { stopAll } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { DeadLetterRecord, OccupancyChangeRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { kafkaDeadLetterSink } from '../runtime/dead-letter.js';
import { counterOnce, processorMetrics } from '../runtime/metrics.js';
import { startProcessor, type Processor, type ProcessorOptions } from '../runtime/processor.js';
import { startTicker } from '../shared/ticker.js';
import { applyRollupChanges, applyRollupUplinks, tickRollups, type RollupResult } from './apply.js';
import { defaultRollupPolicy, type RollupPolicy } from './reduce.js';

export interface RollupsDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topics: { occupancyChanges: string; uplinks: string; deadLetter: string };
  groupIds: { changes: string; uplinks: string };
  logger: Logger;
  metrics?: Registry;
  /** Tick period (ms) and the most sites one tick closes. */
  tick: { everyMs: number; maxItems: number };
  policy?: Partial<RollupPolicy>;
  /** The wall clock (epoch ms) the tick closes buckets by: tests may move it. */
  now?: () => number;
  options?: Omit<ProcessorOptions, 'groupId' | 'topic'>;
}

export interface Rollups {
  changes: Processor;
  uplinks: Processor;
  /** Runs one tick now; returns what it wrote. */
  tickOnce(): Promise<RollupResult & { sites: number }>;
  stop(): Promise<void>;
}

/**
 * Rollups on the shared runtime (processors/runtime), effectively once: consumer `changes` (occupancy-change
 * events) recomputes space and site occupancy rows (5-minute and hourly: rate, dwell, turnover), consumer
 * `uplinks` the device health rows, both in the runtime's transaction with the partition offset; a periodic
 * tick closes each site's buckets by the wall clock. No events leave: the rows are the output. Undecodable
 * records are dead-lettered by the runtime (DECODE_FAILED).
 */
export async function startRollups(deps: RollupsDeps): Promise<Rollups> {
  const { logger } = deps;
  const registry = deps.metrics ?? new Registry();
  const now = deps.now ?? Date.now;
  const policy: RollupPolicy = { ...defaultRollupPolicy, ...deps.policy };
  const ignored = ignoredCounter(registry);
  const count = (r: RollupResult) => {
    if (r.ignored.noSite > 0) ignored.inc({ reason: 'no-site' }, r.ignored.noSite);
    if (r.ignored.lateDropped > 0) ignored.inc({ reason: 'late-dropped' }, r.ignored.lateDropped);
  };
  const deadLetters = await registerValueSchema<DeadLetterRecord>(
    deps.registry,
    deps.topics.deadLetter,
    readAvroSchema('dead-letter'),
  );
  const producer = await connectProcessorProducer(deps.kafka);
  const common = {
    kafka: deps.kafka,
    pool: deps.pipelinePool,
    logger,
    registry,
    deadLetter: kafkaDeadLetterSink(producer, deps.topics.deadLetter, deadLetters),
  };
  const decoder = <T>(what: string) => avroDecoder<T>(deps.registry, what);

  const changes = await startProcessor<OccupancyChangeRecord>({
    ...common,
    options: { ...deps.options, groupId: deps.groupIds.changes, topic: deps.topics.occupancyChanges },
    handler: {
      name: 'rollups',
      decode: decoder('an occupancy-change record'),
      async apply(client, records) {
        count(await applyRollupChanges(client, records, policy));
        return { outbox: [] };
      },
    },
  });
  const uplinks = await startProcessor<UplinkRecord>({
    ...common,
    options: { ...deps.options, groupId: deps.groupIds.uplinks, topic: deps.topics.uplinks },
    handler: {
      name: 'rollups-health',
      decode: decoder('an uplink record'),
      async apply(client, records) {
        count(await applyRollupUplinks(client, records, policy));
        return { outbox: [] };
      },
    },
  });

  async function tickOnce() {
    const result = await withTransaction(deps.pipelinePool, (client) =>
      tickRollups(client, now(), deps.tick.maxItems, policy),
    );
    count(result);
    return result;
  }
  const runtimeMetrics = processorMetrics(registry);
  const ticker = startTicker({
    name: 'rollups',
    everyMs: deps.tick.everyMs,
    step: tickOnce,
    logger,
    onError: () =>
      runtimeMetrics.errors.inc({ processor: 'rollups-tick', code: 'DB_UNAVAILABLE', handling: 'retried' }),
  });
  logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'rollups running');

  return {
    changes,
    uplinks,
    tickOnce,
    async stop() {
      await stopAll([{ stop: () => producer.disconnect() }, ticker, uplinks, changes]);
    },
  };
}

/** `rollup_records_ignored_total{reason}`: records without a site (no-site) or beyond the late horizon. */
function ignoredCounter(registry: Registry): Counter<'reason'> {
  return counterOnce(registry, {
    name: 'rollup_records_ignored_total',
    help: 'Records the rollups did not count: space without a site (no-site), older than the late horizon (late-dropped)',
    labelNames: ['reason'] as const,
  });
}
