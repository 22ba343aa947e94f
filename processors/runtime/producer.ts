import { Partitioners, type Kafka, type Producer } from 'kafkajs';

/**
 * The producer a processor's outbox relay and dead-letter sink share: idempotent with one request in flight, so
 * a partition's records keep the relay's `seq` order across broker retries; topics only from the catalog; keys
 * hashed with murmur2 like the Java clients, so a key lands on the partition other producers pick for it.
 * Retries stay bounded (the client's), so a relay's transaction is not held open while Kafka is away: the relay
 * backs off and retries instead.
 */
export async function connectProcessorProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return producer;
}
