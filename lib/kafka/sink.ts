import { Partitioners, type Kafka } from 'kafkajs';
import type { Service } from '../lifecycle.js';

export interface KeyedRecord {
  key: string;
  value: Buffer;
}

/** Sends records and resolves only after every in-sync replica acknowledged them (acks = -1). */
export interface RecordSink {
  send(topic: string, records: KeyedRecord[]): Promise<void>;
}

/**
 * An idempotent kafkajs producer behind the RecordSink interface: broker retries cannot duplicate or reorder a
 * partition's records. Retries are unlimited (as idempotence requires), so while Kafka is away `send` does not
 * resolve and sources stop acknowledging: backpressure instead of an unbounded buffer. Keys are hashed with
 * the Java client's murmur2 partitioner, so other producers place a DevEUI on the same partition.
 * Topics are never auto-created: they come from the topic catalog.
 */
export async function startKafkaSink(kafka: Kafka): Promise<RecordSink & Service> {
  const producer = kafka.producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
  await producer.connect();
  return {
    async send(topic, records) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.map((r) => ({ key: r.key, value: r.value })),
      });
    },
    async stop() {
      await producer.disconnect();
    },
  };
}
