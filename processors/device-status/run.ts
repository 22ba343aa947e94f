import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import type { Logger } from '../../lib/logger.js';
import type { DeviceStatusRecord } from '../../schemas/avro/records.js';
import { startProcessorKit } from '../runtime/kit.js';
import type { Processor, ProcessorOptions } from '../runtime/processor.js';
import { applyDeviceStatus } from './apply.js';

export interface DeviceStatusDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topics: { deviceStatus: string; deadLetter: string };
  groupId: string;
  logger: Logger;
  /** Prometheus registry the runtime's metrics go to (a private one when absent). */
  metrics?: Registry;
  options?: Omit<ProcessorOptions, 'groupId' | 'topic'>;
}

/**
 * Device status history on the shared runtime (processors/runtime), effectively once: ChirpStack status events of
 * known devices (parking.device-status.v1) in, `device_status` rows out (battery %, link margin, external power),
 * one transaction per batch with the partition's offset. Undecodable records are dead-lettered with DECODE_FAILED,
 * records outside their contract with PAYLOAD_INVALID; a failing database is retried with backoff. Nothing is
 * published: no outbox, no relay.
 */
export async function startDeviceStatus(deps: DeviceStatusDeps): Promise<Processor> {
  const kit = await startProcessorKit({
    kafka: deps.kafka,
    registry: deps.registry,
    pool: deps.pipelinePool,
    logger: deps.logger,
    metrics: deps.metrics,
    deadLetterTopic: deps.topics.deadLetter,
  });
  return kit.build(async () => {
    const processor = await kit.consume<DeviceStatusRecord>({
      name: 'device-status',
      groupId: deps.groupId,
      topic: deps.topics.deviceStatus,
      what: 'a device status record',
      options: deps.options,
      async apply(client, records) {
        await applyDeviceStatus(client, records);
        return { outbox: [] };
      },
    });
    deps.logger.info({ topic: deps.topics.deviceStatus, groupId: deps.groupId }, 'device status running');
    return {
      applied: () => processor.applied(),
      assigned: () => processor.assigned(),
      stop: kit.stop,
    };
  });
}
