import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import { PlatformError } from '../../lib/errors.js';
import { decodeAvro } from '../../lib/kafka/avro.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type { OccupancyChangeRecord } from '../../schemas/avro/records.js';
import { fromOccupancyChange } from './envelope.js';
import type { LiveHub } from './hub.js';

export interface LiveKafkaSourceDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  /** parking.occupancy-changes.v1 (Avro OccupancyChange). */
  topic: string;
  /**
   * This instance's own consumer group: every API instance reads every partition, so each can serve any tenant's
   * sockets. Not shared between instances, and not reused across restarts (main.ts adds a random suffix).
   */
  groupId: string;
  hub: LiveHub;
  logger: Logger;
  /** How long start() waits for the group join, ms. */
  joinTimeoutMs?: number;
}

/**
 * Feeds the hub from the change topic. Starts at the end of the log as it was when start() was called (sought
 * explicitly once the group is joined, so a record produced after start() resolved is always delivered); what
 * happened before is the replay's business (replay.ts), not Kafka's. Records are published to the hub as they
 * come — the hub does not queue, each connection bounds its own buffer — so memory is kafkajs' fetch size.
 * Offsets are committed only so a rejoin within this process continues where it was.
 * At least once: outbox repeats carry the same eventId, and connections drop repeats by it. An undecodable record
 * is logged and skipped (the processors dead-letter; the API only reads).
 */
export async function startLiveKafkaSource(deps: LiveKafkaSourceDeps): Promise<Service> {
  const { logger } = deps;
  const admin = deps.kafka.admin();
  await admin.connect();
  let startOffsets: Map<number, string>;
  try {
    startOffsets = new Map(
      (await admin.fetchTopicOffsets(deps.topic)).map((p) => [p.partition, p.high] as const),
    );
  } finally {
    await admin.disconnect();
  }
  const consumer = deps.kafka.consumer({
    groupId: deps.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 100,
  });
  let sought = false;
  let joined: () => void = () => undefined;
  const joinedOnce = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    if (!sought) {
      sought = true;
      for (const partition of payload.memberAssignment[deps.topic] ?? []) {
        const offset = startOffsets.get(partition);
        if (offset !== undefined) consumer.seek({ topic: deps.topic, partition, offset });
      }
    }
    joined();
  });
  await consumer.connect();
  await consumer.subscribe({ topic: deps.topic, fromBeginning: false });
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ message, partition }) => {
      if (!message.value) return;
      let record: OccupancyChangeRecord;
      try {
        record = await decodeAvro<OccupancyChangeRecord>(deps.registry, message.value);
      } catch (error) {
        logger.warn(
          { err: error, topic: deps.topic, partition, offset: message.offset },
          'undecodable occupancy change skipped by live updates',
        );
        return;
      }
      deps.hub.publish(fromOccupancyChange(record));
    },
  });
  const timeoutMs = deps.joinTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      joinedOnce,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new PlatformError('KAFKA_UNAVAILABLE', `live updates: no group join within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  logger.info({ topic: deps.topic, groupId: deps.groupId }, 'live updates consuming');
  return { stop: () => consumer.disconnect() };
}
