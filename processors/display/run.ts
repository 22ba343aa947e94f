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
import type {
  DeadLetterRecord,
  DownlinkOutcomeRecord,
  OccupancyChangeRecord,
} from '../../schemas/avro/records.js';
import { defaultDownlinkPolicy, type DownlinkEffect, type DownlinkPolicy } from '../downlink/reduce.js';
import { kafkaDeadLetterSink } from '../runtime/dead-letter.js';
import { counterOnce, processorMetrics } from '../runtime/metrics.js';
import { startMqttOutboxRelay, type MqttOutboxRelay, type MqttPublisher } from '../runtime/mqtt-outbox.js';
import { startOutboxRelay, writeOutbox, type OutboxRelay } from '../runtime/outbox.js';
import { startProcessor, type Processor, type ProcessorOptions } from '../runtime/processor.js';
import { backoffDelayMs } from '../runtime/backoff.js';
import {
  applyDownlinkOutcomes,
  applyOccupancyChanges,
  tickDisplays,
  tickDownlinks,
  type DisplaySettings,
  type WorkResult,
} from './apply.js';
import { defaultDisplayPolicy, type DisplayPolicy } from './reduce.js';

export interface DisplaysDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  /** Where `command/down` messages go (ChirpStack's MQTT integration). */
  mqtt: MqttPublisher;
  topics: { occupancyChanges: string; downlinkOutcomes: string; deadLetter: string };
  groupIds: { changes: string; outcomes: string };
  logger: Logger;
  metrics?: Registry;
  /** Tick period (ms) and the most displays and jobs one tick handles (each of the two steps). */
  tick: { everyMs: number; maxItems: number };
  display?: Partial<Omit<DisplayPolicy, 'requireAck'>>;
  downlink?: Partial<DownlinkPolicy>;
  /** The wall clock (epoch ms): tests may move it. */
  now?: () => number;
  options?: Omit<ProcessorOptions, 'groupId' | 'topic'>;
  /** The ticks serve only these tenants (a shard; tests that move the clock); default: all. */
  tenants?: readonly string[];
}

export interface Displays {
  changes: Processor;
  outcomes: Processor;
  /** Runs one tick now (display reconciliation, then due downlinks); returns what it did. */
  tickOnce(): Promise<{ displays: WorkResult; downlinks: WorkResult }>;
  stop(): Promise<void>;
}

/**
 * Displays and downlinks on the shared runtime (processors/runtime), effectively once:
 * - consumer `changes` (occupancy-change events): display state machine → display command → downlink job, in the
 *   runtime's transaction with the partition offset;
 * - consumer `outcomes` (downlink-outcome events from ChirpStack via ingest): job acked or retried → display
 *   command confirmed;
 * - a periodic tick (`tick.everyMs`, at most `tick.maxItems` displays and jobs each, one transaction each):
 *   unconfirmed display commands re-sent after the confirm timeout, displays synced with their space's
 *   reservations (at a reservation's start − lead, start and end, and when one changed status: created or
 *   cancelled through the API, ended by the lifecycle job), due jobs sent through the token buckets, exhausted
 *   jobs dead-lettered;
 * - two outbox relays: `command/down` to MQTT, dead letters to Kafka.
 * Undecodable records are dead-lettered by the runtime (DECODE_FAILED); a bad display code (ENCODE_FAILED) too.
 */
export async function startDisplays(deps: DisplaysDeps): Promise<Displays> {
  const { logger } = deps;
  const registry = deps.metrics ?? new Registry();
  const runtimeMetrics = processorMetrics(registry);
  const now = deps.now ?? Date.now;
  const deadLetters = await registerValueSchema<DeadLetterRecord>(
    deps.registry,
    deps.topics.deadLetter,
    readAvroSchema('dead-letter'),
  );
  const settings: DisplaySettings = {
    display: {
      looks: defaultDisplayPolicy.looks,
      reservationLeadMs: defaultDisplayPolicy.reservationLeadMs,
      confirmTimeoutMs: defaultDisplayPolicy.confirmTimeoutMs,
      ...deps.display,
    },
    downlink: { ...defaultDownlinkPolicy, ...deps.downlink },
    deadLetterTopic: deps.topics.deadLetter,
    encodeDeadLetter: (record) => deadLetters.encode(record),
  };
  const downlinks = downlinkCounter(registry);
  const count = (effects: readonly DownlinkEffect[]) => {
    for (const e of effects) downlinks.inc({ event: e.type });
  };

  const producer = await connectProcessorProducer(deps.kafka);
  const kafkaRelay: OutboxRelay = await startOutboxRelay({
    pool: deps.pipelinePool,
    producer,
    logger,
    metrics: runtimeMetrics,
    topics: [deps.topics.deadLetter],
  });
  const mqttRelay: MqttOutboxRelay = await startMqttOutboxRelay({
    pool: deps.pipelinePool,
    mqtt: deps.mqtt,
    logger,
    metrics: runtimeMetrics,
  });
  const kick = () => {
    kafkaRelay.kick();
    mqttRelay.kick();
  };
  const common = {
    kafka: deps.kafka,
    pool: deps.pipelinePool,
    logger,
    registry,
    deadLetter: kafkaDeadLetterSink(producer, deps.topics.deadLetter, deadLetters),
    onOutbox: kick,
  };
  const decoder = <T>(what: string) => avroDecoder<T>(deps.registry, what);

  const changes = await startProcessor<OccupancyChangeRecord>({
    ...common,
    options: { ...deps.options, groupId: deps.groupIds.changes, topic: deps.topics.occupancyChanges },
    handler: {
      name: 'display',
      decode: decoder('an occupancy-change record'),
      async apply(client, records) {
        const result = await applyOccupancyChanges(client, records, settings, now());
        count(result.downlinkEffects);
        return { outbox: result.outbox };
      },
    },
  });
  const outcomes = await startProcessor<DownlinkOutcomeRecord>({
    ...common,
    options: { ...deps.options, groupId: deps.groupIds.outcomes, topic: deps.topics.downlinkOutcomes },
    handler: {
      name: 'downlink-outcomes',
      decode: decoder('a downlink-outcome record'),
      async apply(client, records) {
        const result = await applyDownlinkOutcomes(client, records, settings, now());
        count(result.downlinkEffects);
        if (result.unmatched > 0) downlinks.inc({ event: 'outcome-unmatched' }, result.unmatched);
        return { outbox: result.outbox };
      },
    },
  });

  /** One step in its own transaction: the outbox rows are written with the state that decided them. */
  async function step(
    run: (client: Parameters<typeof tickDisplays>[0], at: number) => Promise<WorkResult>,
  ): Promise<WorkResult> {
    const result = await withTransaction(deps.pipelinePool, async (client) => {
      const r = await run(client, now());
      await writeOutbox(client, r.outbox);
      return r;
    });
    count(result.downlinkEffects);
    if (result.outbox.length > 0) kick();
    return result;
  }
  async function tickOnce() {
    const tenants = deps.tenants ?? null;
    const displays = await step((client, at) =>
      tickDisplays(client, settings, at, deps.tick.maxItems, tenants),
    );
    const downlinksDone = await step((client, at) =>
      tickDownlinks(client, settings, at, deps.tick.maxItems, tenants),
    );
    return { displays, downlinks: downlinksDone };
  }

  let running = true;
  let wake: (() => void) | undefined;
  const ticking = (async () => {
    let failures = 0;
    while (running) {
      let delay = deps.tick.everyMs;
      try {
        await tickOnce();
        failures = 0;
      } catch (error) {
        failures++;
        runtimeMetrics.errors.inc({ processor: 'display-tick', code: 'DB_UNAVAILABLE', handling: 'retried' });
        logger.warn({ err: error, failures }, 'display tick failed, backing off');
        delay = Math.max(delay, backoffDelayMs(failures, { initialMs: 100, maxMs: 5_000 }, Math.random));
      }
      if (!running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();
  logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'displays and downlinks running');

  return {
    changes,
    outcomes,
    tickOnce,
    async stop() {
      // Consumers and tick first (they write outbox rows), then the relays, then the producer they share.
      await stopAll([
        { stop: () => producer.disconnect() },
        kafkaRelay,
        mqttRelay,
        {
          stop: async () => {
            running = false;
            wake?.();
            await ticking;
          },
        },
        outcomes,
        changes,
      ]);
    },
  };
}

/** `downlink_events_total{event}`: the downlink reducer's effects (send-downlink, downlink-confirmed, ...). */
function downlinkCounter(registry: Registry): Counter<'event'> {
  return counterOnce(registry, {
    name: 'downlink_events_total',
    help: 'Downlink queue effects: sends, confirmations, supersessions, skips, dead letters, unmatched outcomes',
    labelNames: ['event'] as const,
  });
}
