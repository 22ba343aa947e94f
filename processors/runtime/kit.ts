import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { registerValueSchema, type AvroSerde } from '../../lib/kafka/avro.js';
import { stopAll, type Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { DeadLetterRecord } from '../../schemas/avro/records.js';
import { startTicker } from '../shared/ticker.js';
import { avroDecoder } from './avro-decoder.js';
import { kafkaDeadLetterSink } from './dead-letter.js';
import { processorMetrics, type ProcessorMetrics } from './metrics.js';
import { startOutboxRelay, type OutboxRelay } from './outbox.js';
import { connectProcessorProducer } from './producer.js';
import { startProcessor, type Processor, type ProcessorHandler, type ProcessorOptions } from './processor.js';

export interface ProcessorKitDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pool: Pool;
  logger: Logger;
  /** Prometheus registry of the runtime's metrics (a private one when absent). */
  metrics?: Registry;
  /** Where undecodable or non-retriable records go; required for `consume()` (a tick-only job has none). */
  deadLetterTopic?: string;
  /** Topics whose outbox rows this instance relays to Kafka; absent or empty: no Kafka relay. */
  relayTopics?: readonly string[];
}

/**
 * The wiring every processor repeats, built once: the dead-letter schema and sink, the producer the relay and the
 * dead letters share, the Kafka outbox relay, consumers on the runtime (kicking the relay after each commit that
 * wrote outbox rows) and tickers (a failed tick counted as a retried error). `stop()` stops in reverse start
 * order: tickers and consumers first (they write outbox rows), then what was added with `add()`, the relay, and
 * the producer last.
 */
export interface ProcessorKit {
  metrics: Registry;
  runtime: ProcessorMetrics;
  producer: Producer;
  relay: OutboxRelay | undefined;
  /** The dead-letter topic's serde, for processors that dead-letter through their outbox (absent without one). */
  deadLetters: AvroSerde<DeadLetterRecord> | undefined;
  consume<T>(spec: {
    name: string;
    groupId: string;
    topic: string;
    /** What a record is, for DECODE_FAILED dead letters ("an uplink record"). */
    what: string;
    apply: ProcessorHandler<T>['apply'];
    options?: Omit<ProcessorOptions, 'groupId' | 'topic'>;
  }): Promise<Processor>;
  tick(spec: { name: string; everyMs: number; step: () => Promise<unknown> }): void;
  /** Wakes every relay (the Kafka one and those added with `addRelay`): new outbox rows were committed. */
  kick(): void;
  /** Another relay (e.g. the MQTT outbox relay): kicked with the others, stopped with the kit. */
  addRelay(relay: Service & { kick(): void }): void;
  /** A component stopped with the kit (before the components added earlier). */
  add(service: Service): void;
  /** A connected Kafka admin client (e.g. for `storedLag`), disconnected with the kit. */
  connectAdmin(): Promise<Admin>;
  /**
   * Runs a processor's wiring on the kit and returns what it built; if the wiring fails, everything the kit
   * started so far is stopped before the error is rethrown (no producer or relay left running).
   */
  build<R>(wire: () => Promise<R>): Promise<R>;
  stop(): Promise<void>;
}

export async function startProcessorKit(deps: ProcessorKitDeps): Promise<ProcessorKit> {
  const metrics = deps.metrics ?? new Registry();
  const runtime = processorMetrics(metrics);
  const deadLetters =
    deps.deadLetterTopic === undefined
      ? undefined
      : await registerValueSchema<DeadLetterRecord>(
          deps.registry,
          deps.deadLetterTopic,
          readAvroSchema('dead-letter'),
        );
  const producer = await connectProcessorProducer(deps.kafka);
  const services: Service[] = [{ stop: () => producer.disconnect() }];
  const deadLetter =
    deps.deadLetterTopic === undefined || deadLetters === undefined
      ? undefined
      : kafkaDeadLetterSink(producer, deps.deadLetterTopic, deadLetters);
  let relay: OutboxRelay | undefined;
  const relays: Array<{ kick(): void }> = [];
  const kick = () => {
    for (const r of relays) r.kick();
  };
  try {
    if (deps.relayTopics && deps.relayTopics.length > 0) {
      relay = await startOutboxRelay({
        pool: deps.pool,
        producer,
        logger: deps.logger,
        metrics: runtime,
        topics: deps.relayTopics,
      });
      services.push(relay);
      relays.push(relay);
    }
  } catch (error) {
    await stopAll(services);
    throw error;
  }
  return {
    metrics,
    runtime,
    producer,
    relay,
    deadLetters,
    async consume(spec) {
      if (!deadLetter)
        throw new Error(`processor ${spec.name}: the kit was started without a dead-letter topic`);
      const processor = await startProcessor({
        kafka: deps.kafka,
        pool: deps.pool,
        logger: deps.logger,
        registry: metrics,
        deadLetter,
        onOutbox: kick,
        options: { ...spec.options, groupId: spec.groupId, topic: spec.topic },
        handler: { name: spec.name, decode: avroDecoder(deps.registry, spec.what), apply: spec.apply },
      });
      services.push(processor);
      return processor;
    },
    tick(spec) {
      services.push(
        startTicker({
          ...spec,
          logger: deps.logger,
          onError: () =>
            runtime.errors.inc({
              processor: `${spec.name}-tick`,
              code: 'DB_UNAVAILABLE',
              handling: 'retried',
            }),
        }),
      );
    },
    kick,
    addRelay(added) {
      services.push(added);
      relays.push(added);
    },
    add(service) {
      services.push(service);
    },
    async connectAdmin() {
      const admin = deps.kafka.admin();
      await admin.connect();
      services.push({ stop: () => admin.disconnect() });
      return admin;
    },
    async build(wire) {
      try {
        return await wire();
      } catch (error) {
        await stopAll(services);
        throw error;
      }
    },
    stop: () => stopAll(services),
  };
}
