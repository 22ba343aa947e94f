import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { type Counter } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import type { Logger } from '../../lib/logger.js';
import type { OccupancyChangeRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { startProcessorKit } from '../runtime/kit.js';
import { counterOnce } from '../runtime/metrics.js';
import type { Processor, ProcessorOptions } from '../runtime/processor.js';
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
  const now = deps.now ?? Date.now;
  const policy: RollupPolicy = { ...defaultRollupPolicy, ...deps.policy };
  const kit = await startProcessorKit({
    kafka: deps.kafka,
    registry: deps.registry,
    pool: deps.pipelinePool,
    logger,
    metrics: deps.metrics,
    deadLetterTopic: deps.topics.deadLetter,
  });
  const ignored = ignoredCounter(kit.metrics);
  const count = (r: RollupResult) => {
    if (r.ignored.noSite > 0) ignored.inc({ reason: 'no-site' }, r.ignored.noSite);
    if (r.ignored.lateDropped > 0) ignored.inc({ reason: 'late-dropped' }, r.ignored.lateDropped);
  };
  return kit.build(async () => {
    const changes = await kit.consume<OccupancyChangeRecord>({
      name: 'rollups',
      groupId: deps.groupIds.changes,
      topic: deps.topics.occupancyChanges,
      what: 'an occupancy-change record',
      options: deps.options,
      async apply(client, records) {
        count(await applyRollupChanges(client, records, policy));
        return { outbox: [] };
      },
    });
    const uplinks = await kit.consume<UplinkRecord>({
      name: 'rollups-health',
      groupId: deps.groupIds.uplinks,
      topic: deps.topics.uplinks,
      what: 'an uplink record',
      options: deps.options,
      async apply(client, records) {
        count(await applyRollupUplinks(client, records, policy));
        return { outbox: [] };
      },
    });

    const tickOnce = async () => {
      const result = await withTransaction(deps.pipelinePool, (client) =>
        tickRollups(client, now(), deps.tick.maxItems, policy),
      );
      count(result);
      return result;
    };
    kit.tick({ name: 'rollups', everyMs: deps.tick.everyMs, step: tickOnce });
    logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'rollups running');
    return { changes, uplinks, tickOnce, stop: kit.stop };
  });
}

/** `rollup_records_ignored_total{reason}`: records without a site (no-site) or beyond the late horizon. */
function ignoredCounter(registry: Registry): Counter<'reason'> {
  return counterOnce(registry, {
    name: 'rollup_records_ignored_total',
    help: 'Records the rollups did not count: space without a site (no-site), older than the late horizon (late-dropped)',
    labelNames: ['reason'] as const,
  });
}
