import type { Kafka } from 'kafkajs';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/lifecycle.js';
import type { Bridge } from './bridge.js';

export interface ChirpStackKafkaSourceOptions {
  topic: string;
  groupId: string;
  /** Messages handled concurrently at most (they share the sink's batches). */
  window: number;
}

/** `application.{applicationId}.device.{devEui}.event.{type}`: ChirpStack's Kafka integration key. */
export function parseChirpStackKafkaKey(key: string): { devEui: string; eventType: string } | undefined {
  const parts = key.split('.');
  if (parts.length !== 6 || parts[0] !== 'application' || parts[2] !== 'device' || parts[4] !== 'event') {
    return undefined;
  }
  return { devEui: parts[3]!.toUpperCase(), eventType: parts[5]! };
}

/**
 * ChirpStack's own Kafka integration topic as a source. The event type comes from the `event` header (else the
 * key's last segment); JSON or protobuf is told from the body. Offsets are committed only after every message up
 * to them was handled by the bridge (durable, dead-lettered or a duplicate): commit after publish. A retriable
 * failure fails the batch, and kafkajs fetches it again from the last committed offset; the copies already
 * published are then dropped as duplicates by event id.
 */
export async function startChirpStackKafkaSource(
  kafka: Kafka,
  bridge: Bridge,
  options: ChirpStackKafkaSourceOptions,
  logger: Logger,
): Promise<Service> {
  const consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    allowAutoTopicCreation: false,
    maxBytesPerPartition: 1_048_576,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      for (let start = 0; start < batch.messages.length; start += options.window) {
        if (!isRunning() || isStale()) return;
        const chunk = batch.messages.slice(start, start + options.window);
        await Promise.all(
          chunk.map((message) => {
            const key = message.key?.toString('utf8') ?? '';
            const fromKey = parseChirpStackKafkaKey(key);
            const header = message.headers?.['event'];
            const eventType = header === undefined ? fromKey?.eventType : header.toString();
            return bridge.handle(
              {
                source: 'KAFKA',
                eventType: eventType ?? 'unknown',
                origin: `${batch.topic}/${batch.partition}/${message.offset}`,
                body: message.value ?? Buffer.alloc(0),
                receivedAt: Date.now(),
              },
              { devEuiHint: fromKey?.devEui ?? null },
            );
          }),
        );
        const last = chunk[chunk.length - 1]!;
        resolveOffset(last.offset);
        await consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
        ]);
        await heartbeat();
      }
    },
  });
  logger.info({ topic: options.topic, groupId: options.groupId }, 'chirpstack kafka source consuming');
  return {
    async stop() {
      await consumer.disconnect();
    },
  };
}
