import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { registerValueSchema } from '../../lib/kafka/avro.js';
import type { Logger } from '../../lib/logger.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { LivenessAlertRecord, UplinkRecord } from '../../schemas/avro/records.js';
import { storedLag } from '../runtime/lag.js';
import { closedGate, observeLag, type RaiseGatePolicy } from '../shared/lag-gate.js';
import { startProcessorKit } from '../runtime/kit.js';
import { counterOnce } from '../runtime/metrics.js';
import { writeOutbox, type OutboxRelay } from '../runtime/outbox.js';
import type { Processor, ProcessorOptions } from '../runtime/processor.js';
import { applyLivenessUplinks, tickLiveness, type LivenessResult, type LivenessSettings } from './apply.js';

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
  /** When ticks may raise: caught up to at most `maxLag` records for `settleMs` (processors/shared/lag-gate.ts). */
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
  const now = deps.now ?? Date.now;
  const alerts = await registerValueSchema<LivenessAlertRecord>(
    deps.registry,
    deps.topics.livenessAlerts,
    readAvroSchema('liveness-alert'),
  );
  const settings: LivenessSettings = {
    deviceIntervalMs: deps.deviceIntervalMs,
    gatewaySilentMinutes: deps.gatewaySilentMinutes,
    alertsTopic: deps.topics.livenessAlerts,
    encode: (record) => alerts.encode(record),
  };
  const kit = await startProcessorKit({
    kafka: deps.kafka,
    registry: deps.registry,
    pool: deps.pipelinePool,
    logger,
    metrics: deps.metrics,
    deadLetterTopic: deps.topics.deadLetter,
    relayTopics: deps.relay === false ? [] : [deps.topics.livenessAlerts],
  });
  return kit.build(async () => {
    const admin = await kit.connectAdmin();
    const gatePolicy = deps.raiseGate ?? defaultRaiseGate;
    let gate = closedGate;
    const deferredTicks = counterOnce(kit.metrics, {
      name: 'liveness_ticks_deferred_total',
      help: 'Liveness ticks that raised nothing because the uplink consumer was behind (or its lag unknown)',
      labelNames: [],
    });
    const processor = await kit.consume<UplinkRecord>({
      name: 'liveness',
      groupId: deps.groupId,
      topic: deps.topics.uplinks,
      what: 'an uplink record',
      options: deps.options,
      async apply(client, uplinks) {
        const result = await applyLivenessUplinks(client, uplinks, settings);
        return { outbox: result.outbox };
      },
    });

    const tickOnce = async (): Promise<LivenessTick> => {
      // The tick's time is when it starts (the lag is measured at about that time).
      const at = now();
      const lag = await storedLag({
        pool: deps.pipelinePool,
        admin,
        groupId: deps.groupId,
        topic: deps.topics.uplinks,
      });
      const observed = observeLag(gate, { now: at, lag }, gatePolicy);
      gate = observed.gate;
      if (!observed.mayRaise) {
        deferredTicks.inc();
        return { outbox: [], alerts: [], entities: 0, deferred: true, lag };
      }
      const result = await withTransaction(deps.pipelinePool, async (client) => {
        const r = await tickLiveness(client, at, deps.tick.maxItems, settings);
        await writeOutbox(client, r.outbox);
        return r;
      });
      if (result.outbox.length > 0) kit.relay?.kick();
      return { ...result, deferred: false };
    };
    kit.tick({ name: 'liveness', everyMs: deps.tick.everyMs, step: tickOnce });
    logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'liveness running');

    return {
      applied: () => processor.applied(),
      assigned: () => processor.assigned(),
      relay: kit.relay,
      tickOnce,
      stop: kit.stop,
    };
  });
}
