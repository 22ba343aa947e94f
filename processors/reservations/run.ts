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
import { counterOnce } from '../runtime/metrics.js';
import { writeOutbox, type OutboxRelay } from '../runtime/outbox.js';
import { tickReservations, type ReservationSettings, type ReservationTick } from './apply.js';
import { defaultReservationPolicy, type ReservationPolicy } from './reduce.js';

export interface ReservationsDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  pipelinePool: Pool;
  topics: { reservationEvents: string };
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

export interface Reservations {
  relay: OutboxRelay | undefined;
  /** Runs one tick now: batches until one is not full or `maxBatches` ran; returns what it did. */
  tickOnce(): Promise<ReservationTick & { batches: number }>;
  stop(): Promise<void>;
}

/**
 * The reservation lifecycle job: a periodic tick (no consumer) that, one transaction per bounded batch, expires
 * reservations whose end passed, marks no-shows (processors/reservations/reduce.ts states the rule), and
 * publishes every status change — including the API's creations and cancellations, which it picks up by their
 * unpublished status — as reservation events through the outbox to `topics.reservationEvents` (Avro, keyed by
 * spaceId, stable event ids). Several instances may run: batches lock their rows with SKIP LOCKED.
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

  async function tickOnce(): Promise<ReservationTick & { batches: number }> {
    const total: ReservationTick & { batches: number } = {
      reservations: 0,
      changes: [],
      events: [],
      outbox: [],
      batches: 0,
    };
    while (total.batches < deps.tick.maxBatches) {
      const batch = await withTransaction(deps.pipelinePool, async (client) => {
        const r = await tickReservations(client, now(), deps.tick.batchSize, settings, deps.tenants ?? null);
        await writeOutbox(client, r.outbox);
        return r;
      });
      total.batches++;
      total.reservations += batch.reservations;
      total.changes.push(...batch.changes);
      total.events.push(...batch.events);
      total.outbox.push(...batch.outbox);
      for (const e of batch.events) events.inc({ type: e.type });
      if (batch.outbox.length > 0) kit.relay?.kick();
      if (batch.reservations < deps.tick.batchSize) break;
    }
    return total;
  }
  kit.tick({ name: 'reservations', everyMs: deps.tick.everyMs, step: tickOnce });
  logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'reservation lifecycle running');
  return { relay: kit.relay, tickOnce, stop: kit.stop };
}
