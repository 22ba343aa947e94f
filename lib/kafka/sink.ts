import type { Kafka } from 'kafkajs';
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
 * partition's records. Topics are never auto-created: they come from the topic catalog.
 */
export async function startKafkaSink(kafka: Kafka): Promise<RecordSink & Service> {
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
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
