import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { registerValueSchema } from '../../lib/kafka/avro.js';
import type { Logger } from '../../lib/logger.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type { ReservationEventRecord } from '../../schemas/avro/records.js';
import { startProcessorKit } from '../runtime/kit.js';
import { storedLag } from '../runtime/lag.js';
import { counterOnce } from '../runtime/metrics.js';
import { writeOutbox, type OutboxRelay } from '../runtime/outbox.js';
import { closedGate, observeLag, type RaiseGatePolicy } from '../shared/lag-gate.js';
import {
  tickReservations,
  type ReservationKey,
  type ReservationSettings,
  type ReservationTick,
} from './apply.js';
import { defaultReservationPolicy, type ReservationPolicy } from './reduce.js';

export interface ReservationsDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topics: { reservationEvents: string };
  /**
   * The occupancy processor's consumer group and input topic (uplinks): a no-show is judged only while its lag,
   * as stored in PostgreSQL, has been within `judgeGate.maxLag` for `judgeGate.settleMs` (reduce.ts "Evidence").
   */
  occupancy: { groupId: string; topic: string };
  judgeGate?: RaiseGatePolicy;
  logger: Logger;
  metrics?: Registry;
  /** Tick period (ms), reservations per batch (one transaction each) and batches per tick at most. */
  tick: { everyMs: number; batchSize: number; maxBatches: number };
  policy?: Partial<ReservationPolicy>;
  /** The wall clock (epoch ms): tests may move it. */
  now?: () => number;
  /** Whether this instance also runs the outbox relay for the events topic (default true). */
  relay?: boolean;
  /** Only these tenants' reservations (a shard; tests that move the clock); default: all. */
  tenants?: readonly string[];
}

/** Defaults of the judgement gate: the occupancy consumer within a few batches of the log end, for a minute. */
export const defaultJudgeGate: RaiseGatePolicy = { maxLag: 100, settleMs: 60_000 };

/** A tick's outcome; `lag`: the occupancy consumer's lag measured at its start (null: unknown). */
export type ReservationsTick = ReservationTick & {
  batches: number;
  pipelineCaughtUp: boolean;
  lag: number | null;
};

export interface Reservations {
  relay: OutboxRelay | undefined;
  /**
   * Runs one tick now (after the one in flight, if any): batches until one is not full or `maxBatches` ran;
   * returns what it did.
   */
  tickOnce(): Promise<ReservationsTick>;
  stop(): Promise<void>;
}

/**
 * The reservation lifecycle job: a periodic tick (no consumer) that, one transaction per bounded batch, expires
 * reservations whose end passed, marks no-shows (only with evidence: the sensor heard after start + grace, the
 * occupancy consumer caught up; processors/reservations/reduce.ts states the rule), and publishes every status
 * change — including the API's creations and cancellations, which it picks up by their unpublished status — as
 * reservation events through the outbox to `topics.reservationEvents` (Avro, keyed by spaceId, stable event ids).
 * Several instances may run: batches lock their rows with SKIP LOCKED, so each event is written by one of them.
 * Each tick first measures the occupancy consumer's lag (`storedLag`: one broker offsets request, one query).
 */
export async function startReservations(deps: ReservationsDeps): Promise<Reservations> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const serde = await registerValueSchema<ReservationEventRecord>(
    deps.registry,
    deps.topics.reservationEvents,
    readAvroSchema('reservation-event'),
  );
  const settings: ReservationSettings = {
    policy: { ...defaultReservationPolicy, ...deps.policy },
    topic: deps.topics.reservationEvents,
    encode: (record) => serde.encode(record),
  };
  const kit = await startProcessorKit({
    kafka: deps.kafka,
    registry: deps.registry,
    pool: deps.pipelinePool,
    logger,
    metrics: deps.metrics,
    relayTopics: deps.relay === false ? [] : [deps.topics.reservationEvents],
  });
  const events = counterOnce(kit.metrics, {
    name: 'reservation_events_total',
    help: 'Reservation events written to the outbox by the lifecycle job, by type',
    labelNames: ['type'] as const,
  });
  const deferrals = counterOnce(kit.metrics, {
    name: 'reservation_judgements_deferred_total',
    help: 'No-show judgements due but deferred for lack of evidence (retried next tick), by reason',
    labelNames: ['reason'] as const,
  });
  const gateClosedTicks = counterOnce(kit.metrics, {
    name: 'reservation_ticks_gate_closed_total',
    help: 'Lifecycle ticks that judged no no-show because the occupancy consumer was behind (or its lag unknown)',
    labelNames: [],
  });
  const admin = await kit.build(() => kit.connectAdmin());
  const gatePolicy = deps.judgeGate ?? defaultJudgeGate;
  let gate = closedGate;

  async function tickOnce(): Promise<ReservationsTick> {
    // The gate is observed once, at the tick's start: every batch of the tick judges with the same evidence.
    const lag = await storedLag({
      pool: deps.pipelinePool,
      admin,
      groupId: deps.occupancy.groupId,
      topic: deps.occupancy.topic,
    });
    const observed = observeLag(gate, { now: now(), lag }, gatePolicy);
    gate = observed.gate;
    if (!observed.mayRaise) gateClosedTicks.inc();
    const total: ReservationsTick = {
      reservations: 0,
      deferred: [],
      changes: [],
      events: [],
      outbox: [],
      batches: 0,
      pipelineCaughtUp: observed.mayRaise,
      lag,
    };
    // Deferred judgements stay due: they are left out of the tick's later batches (at most one tick's rows).
    const skip: ReservationKey[] = [];
    while (total.batches < deps.tick.maxBatches) {
      const batch = await withTransaction(deps.pipelinePool, async (client) => {
        const r = await tickReservations(
          client,
          now(),
          deps.tick.batchSize,
          settings,
          { pipelineCaughtUp: observed.mayRaise, skip },
          deps.tenants ?? null,
        );
        await writeOutbox(client, r.outbox);
        return r;
      });
      total.batches++;
      total.reservations += batch.reservations;
      total.deferred.push(...batch.deferred);
      total.changes.push(...batch.changes);
      total.events.push(...batch.events);
      total.outbox.push(...batch.outbox);
      for (const e of batch.events) events.inc({ type: e.type });
      for (const d of batch.deferred) {
        deferrals.inc({ reason: d.reason });
        skip.push({ tenantId: d.tenantId, reservationId: d.reservationId });
      }
      if (batch.outbox.length > 0) kit.relay?.kick();
      if (batch.reservations < deps.tick.batchSize) break;
    }
    return total;
  }
  // One tick at a time per instance (the ticker's and a caller's): the gate's state is observed in order.
  let inFlight: Promise<unknown> = Promise.resolve();
  function serialTick(): Promise<ReservationsTick> {
    const run = inFlight.then(tickOnce, tickOnce);
    inFlight = run.catch(() => undefined);
    return run;
  }
  kit.tick({ name: 'reservations', everyMs: deps.tick.everyMs, step: serialTick });
  logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'reservation lifecycle running');
  return { relay: kit.relay, tickOnce: serialTick, stop: kit.stop };
}
