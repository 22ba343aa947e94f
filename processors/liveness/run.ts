import { avroDecoder } from '../runtime/avro-decoder.js';
import { connectProcessorProducer } from '../runtime/producer.js';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import { Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { registerValueSchema } from '../../lib/kafka/avro.js';
import { stopAll } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { DeadLetterRecord, LivenessAlertRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { kafkaDeadLetterSink } from '../runtime/dead-letter.js';
import { storedLag } from '../runtime/lag.js';
import { counterOnce, processorMetrics } from '../runtime/metrics.js';
import { startOutboxRelay, writeOutbox, type OutboxRelay } from '../runtime/outbox.js';
import { startProcessor, type Processor, type ProcessorOptions } from '../runtime/processor.js';
import { startTicker } from '../shared/ticker.js';
import { applyLivenessUplinks, tickLiveness, type LivenessResult, type LivenessSettings } from './apply.js';
import { closedGate, observeLag, type RaiseGatePolicy } from './reduce.js';

export interface LivenessDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topics: { uplinks: string; livenessAlerts: string; deadLetter: string };
  groupId: string;
  logger: Logger;
  metrics?: Registry;
  /** Tick period (ms) and the most entities one tick looks at. */
  tick: { everyMs: number; maxItems: number };
  /** Default expected uplink interval of a sensor (ms) and the silence (minutes) after which a gateway alerts. */
  deviceIntervalMs: number;
  gatewaySilentMinutes: number;
  /** The wall clock (epoch ms) silences are measured against: tests may move it. */
  now?: () => number;
  options?: Omit<ProcessorOptions, 'groupId' | 'topic'>;
  /** Whether this instance also runs the outbox relay for the alerts topic (default true). */
  relay?: boolean;
  /** When ticks may raise: caught up to at most `maxLag` records for `settleMs` (reduce.ts observeLag). */
  raiseGate?: RaiseGatePolicy;
}

/** Defaults of the raise gate: within one fetch's worth of records, for a minute. */
export const defaultRaiseGate: RaiseGatePolicy = { maxLag: 1_000, settleMs: 60_000 };

/** A tick's outcome: what it raised, or why it raised nothing (the gate was closed; `lag` null = unknown). */
export type LivenessTick = LivenessResult & { entities: number } & (
    { deferred: false } | { deferred: true; lag: number | null }
  );

export type Liveness = Processor & {
  relay: OutboxRelay | undefined;
  /**
   * Runs one tick now: raises alerts of entities silent past their limit, unless the raise gate is closed (the
   * consumer is behind, or was until less than `raiseGate.settleMs` ago); returns what it did.
   */
  tickOnce(): Promise<LivenessTick>;
};

/**
 * Device and gateway liveness on the shared runtime (processors/runtime), effectively once: the uplink consumer
 * records who was heard (and clears alerts, after the reducer's hysteresis), a periodic tick raises alerts for
 * entities silent past their limit, each in one transaction with its alerts table rows and outbox rows; the relay
 * publishes the alerts (Avro, keyed by entity id) to `topics.livenessAlerts`.
 */
export async function startLiveness(deps: LivenessDeps): Promise<Liveness> {
  const { logger } = deps;
  const registry = deps.metrics ?? new Registry();
  const runtimeMetrics = processorMetrics(registry);
  const now = deps.now ?? Date.now;
  const alerts = await registerValueSchema<LivenessAlertRecord>(
    deps.registry,
    deps.topics.livenessAlerts,
    readAvroSchema('liveness-alert'),
  );
  const deadLetters = await registerValueSchema<DeadLetterRecord>(
    deps.registry,
    deps.topics.deadLetter,
    readAvroSchema('dead-letter'),
  );
  const settings: LivenessSettings = {
    deviceIntervalMs: deps.deviceIntervalMs,
    gatewaySilentMinutes: deps.gatewaySilentMinutes,
    alertsTopic: deps.topics.livenessAlerts,
    encode: (record) => alerts.encode(record),
  };
  const producer = await connectProcessorProducer(deps.kafka);
  const admin = deps.kafka.admin();
  await admin.connect();
  const gatePolicy = deps.raiseGate ?? defaultRaiseGate;
  let gate = closedGate;
  const deferredTicks = counterOnce(registry, {
    name: 'liveness_ticks_deferred_total',
    help: 'Liveness ticks that raised nothing because the uplink consumer was behind (or its lag unknown)',
    labelNames: [],
  });
  const relay =
    deps.relay === false
      ? undefined
      : await startOutboxRelay({
          pool: deps.pipelinePool,
          producer,
          logger,
          metrics: runtimeMetrics,
          topics: [deps.topics.livenessAlerts],
        });
  const processor = await startProcessor<UplinkRecord>({
    kafka: deps.kafka,
    pool: deps.pipelinePool,
    logger,
    registry,
    deadLetter: kafkaDeadLetterSink(producer, deps.topics.deadLetter, deadLetters),
    onOutbox: () => relay?.kick(),
    options: { ...deps.options, groupId: deps.groupId, topic: deps.topics.uplinks },
    handler: {
      name: 'liveness',
      decode: avroDecoder<UplinkRecord>(deps.registry, 'an uplink record'),
      async apply(client, uplinks) {
        const result = await applyLivenessUplinks(client, uplinks, settings);
        return { outbox: result.outbox };
      },
    },
  });

  async function tickOnce(): Promise<LivenessTick> {
    const lag = await storedLag({
      pool: deps.pipelinePool,
      admin,
      groupId: deps.groupId,
      topic: deps.topics.uplinks,
    });
    const observed = observeLag(gate, { now: now(), lag }, gatePolicy);
    gate = observed.gate;
    if (!observed.mayRaise) {
      deferredTicks.inc();
      return { outbox: [], alerts: [], entities: 0, deferred: true, lag };
    }
    const result = await withTransaction(deps.pipelinePool, async (client) => {
      const r = await tickLiveness(client, now(), deps.tick.maxItems, settings);
      await writeOutbox(client, r.outbox);
      return r;
    });
    if (result.outbox.length > 0) relay?.kick();
    return { ...result, deferred: false };
  }
  const ticker = startTicker({
    name: 'liveness',
    everyMs: deps.tick.everyMs,
    step: tickOnce,
    logger,
    onError: () =>
      runtimeMetrics.errors.inc({ processor: 'liveness-tick', code: 'DB_UNAVAILABLE', handling: 'retried' }),
  });
  logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'liveness running');

  return {
    applied: () => processor.applied(),
    assigned: () => processor.assigned(),
    relay,
    tickOnce,
    async stop() {
      // Consumer and tick first (they write outbox rows), then the relay, then the producer they share.
      await stopAll([
        { stop: () => producer.disconnect() },
        { stop: () => admin.disconnect() },
        relay,
        ticker,
        processor,
      ]);
    },
  };
}
