import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Pool } from '../../lib/db/pool.js';
import { decodeAvro } from '../../lib/kafka/avro.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import { applyUplinkBatch } from './apply.js';

export interface OccupancyDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topic: string;
  groupId: string;
  logger: Logger;
  /** Records applied per database transaction; bounds memory and transaction size. */
  maxBatch?: number;
}

/**
 * Consumes the uplinks topic and applies each Kafka batch in bounded database transactions. Offsets are
 * resolved and committed only after the transaction committed (commit after apply); a crash in between
 * redelivers records that the idempotent apply then ignores. A record that cannot be decoded is logged and
 * skipped with its offset, so one bad record cannot stall a partition.
 */
export async function startOccupancy(deps: OccupancyDeps): Promise<Service & { applied(): number }> {
  const { logger } = deps;
  const maxBatch = deps.maxBatch ?? 500;
  const consumer = deps.kafka.consumer({
    groupId: deps.groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    allowAutoTopicCreation: false,
    maxBytesPerPartition: 1_048_576,
    // Let the broker gather records for up to 100 ms: one database transaction per record trickling in would
    // cap the processor at a few hundred records/s (measured by loadtests/pipeline-throughput.ts).
    minBytes: 64 * 1024,
    maxWaitTimeInMs: 100,
  });
  let applied = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [deps.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      for (let start = 0; start < batch.messages.length; start += maxBatch) {
        if (!isRunning() || isStale()) return;
        const chunk = batch.messages.slice(start, start + maxBatch);
        const uplinks: UplinkRecord[] = [];
        for (const message of chunk) {
          if (!message.value) continue;
          try {
            uplinks.push(await decodeAvro<UplinkRecord>(deps.registry, message.value));
          } catch (error) {
            logger.error(
              { err: error, partition: batch.partition, offset: message.offset },
              'undecodable record skipped',
            );
          }
        }
        await applyUplinkBatch(deps.pipelinePool, uplinks);
        applied += uplinks.length;
        const last = chunk[chunk.length - 1];
        if (last) {
          resolveOffset(last.offset);
          // Explicit commit: with autoCommit off, kafkajs' commitOffsetsIfNecessary commits nothing.
          await consumer.commitOffsets([
            { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
          ]);
        }
        await heartbeat();
      }
    },
  });
  logger.info({ topic: deps.topic, groupId: deps.groupId }, 'occupancy processor consuming');
  return {
    applied: () => applied,
    async stop() {
      await consumer.disconnect();
    },
  };
}
