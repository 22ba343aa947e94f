import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Counter, Registry } from 'prom-client';
import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import type { Logger } from '../../lib/logger.js';
import type { DownlinkOutcomeRecord, OccupancyChangeRecord } from '../../schemas/avro/records.js';
import { defaultDownlinkPolicy, type DownlinkEffect, type DownlinkPolicy } from '../downlink/reduce.js';
import { startProcessorKit } from '../runtime/kit.js';
import { counterOnce } from '../runtime/metrics.js';
import { startMqttOutboxRelay, type MqttOutboxRelay, type MqttPublisher } from '../runtime/mqtt-outbox.js';
import { writeOutbox } from '../runtime/outbox.js';
import type { Processor, ProcessorOptions } from '../runtime/processor.js';
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
  const now = deps.now ?? Date.now;
  const kit = await startProcessorKit({
    kafka: deps.kafka,
    registry: deps.registry,
    pool: deps.pipelinePool,
    logger,
    metrics: deps.metrics,
    deadLetterTopic: deps.topics.deadLetter,
    // Dead letters of the ticks (a bad display code, an exhausted job) go through the outbox.
    relayTopics: [deps.topics.deadLetter],
  });
  return kit.build(async () => {
    const deadLetters = kit.deadLetters!;
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
    const downlinks = downlinkCounter(kit.metrics);
    const count = (effects: readonly DownlinkEffect[]) => {
      for (const e of effects) downlinks.inc({ event: e.type });
    };
    const mqttRelay: MqttOutboxRelay = await startMqttOutboxRelay({
      pool: deps.pipelinePool,
      mqtt: deps.mqtt,
      logger,
      metrics: kit.runtime,
    });
    kit.addRelay(mqttRelay);

    const changes = await kit.consume<OccupancyChangeRecord>({
      name: 'display',
      groupId: deps.groupIds.changes,
      topic: deps.topics.occupancyChanges,
      what: 'an occupancy-change record',
      options: deps.options,
      async apply(client, records) {
        const result = await applyOccupancyChanges(client, records, settings, now());
        count(result.downlinkEffects);
        return { outbox: result.outbox };
      },
    });
    const outcomes = await kit.consume<DownlinkOutcomeRecord>({
      name: 'downlink-outcomes',
      groupId: deps.groupIds.outcomes,
      topic: deps.topics.downlinkOutcomes,
      what: 'a downlink-outcome record',
      options: deps.options,
      async apply(client, records) {
        const result = await applyDownlinkOutcomes(client, records, settings, now());
        count(result.downlinkEffects);
        if (result.unmatched > 0) downlinks.inc({ event: 'outcome-unmatched' }, result.unmatched);
        return { outbox: result.outbox };
      },
    });

    /** One step in its own transaction: the outbox rows are written with the state that decided them. */
    const step = async (
      run: (client: Parameters<typeof tickDisplays>[0], at: number) => Promise<WorkResult>,
    ): Promise<WorkResult> => {
      const result = await withTransaction(deps.pipelinePool, async (client) => {
        const r = await run(client, now());
        await writeOutbox(client, r.outbox);
        return r;
      });
      count(result.downlinkEffects);
      if (result.outbox.length > 0) kit.kick();
      return result;
    };
    const tickOnce = async () => {
      const tenants = deps.tenants ?? null;
      const displays = await step((client, at) =>
        tickDisplays(client, settings, at, deps.tick.maxItems, tenants),
      );
      const downlinksDone = await step((client, at) =>
        tickDownlinks(client, settings, at, deps.tick.maxItems, tenants),
      );
      return { displays, downlinks: downlinksDone };
    };
    kit.tick({ name: 'display', everyMs: deps.tick.everyMs, step: tickOnce });
    logger.info({ tickMs: deps.tick.everyMs, topics: deps.topics }, 'displays and downlinks running');
    return { changes, outcomes, tickOnce, stop: kit.stop };
  });
}

/** `downlink_events_total{event}`: the downlink reducer's effects (send-downlink, downlink-confirmed, ...). */
function downlinkCounter(registry: Registry): Counter<'event'> {
  return counterOnce(registry, {
    name: 'downlink_events_total',
    help: 'Downlink queue effects: sends, confirmations, supersessions, skips, dead letters, unmatched outcomes',
    labelNames: ['event'] as const,
  });
}
