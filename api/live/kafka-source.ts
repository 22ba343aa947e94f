import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import { PlatformError } from '../../lib/errors.js';
import { decodeAvro } from '../../lib/kafka/avro.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type {
  DeviceStatusRecord,
  LivenessAlertRecord,
  OccupancyChangeRecord,
  ReservationEventRecord,
} from '../../schemas/avro/records.js';
import {
  fromDeviceStatus,
  fromLivenessAlert,
  fromOccupancyChange,
  fromReservationEvent,
  type LiveEvent,
} from './envelope.js';
import type { LiveHub } from './hub.js';

/** The topics live updates read, one per record type (schemas/topics.json). */
export interface LiveTopics {
  /** parking.occupancy-changes.v1 (Avro OccupancyChange). */
  occupancyChanges: string;
  /** parking.device-status.v1 (Avro DeviceStatus). */
  deviceStatus: string;
  /** parking.liveness-alerts.v1 (Avro LivenessAlert). */
  livenessAlerts: string;
  /** parking.reservation-events.v1 (Avro ReservationEvent). */
  reservationEvents: string;
}

/** Turns one topic's record value into its envelope; throws when the value is not that topic's record. */
export type LiveDecoder = (registry: SchemaRegistry, value: Buffer) => Promise<LiveEvent>;

/** One decoder per record type: the Confluent-framed Avro value, decoded by its writer schema, then enveloped. */
export const liveDecoders: Record<keyof LiveTopics, LiveDecoder> = {
  occupancyChanges: async (registry, value) =>
    fromOccupancyChange(await decodeAvro<OccupancyChangeRecord>(registry, value)),
  deviceStatus: async (registry, value) =>
    fromDeviceStatus(await decodeAvro<DeviceStatusRecord>(registry, value)),
  livenessAlerts: async (registry, value) =>
    fromLivenessAlert(await decodeAvro<LivenessAlertRecord>(registry, value)),
  reservationEvents: async (registry, value) =>
    fromReservationEvent(await decodeAvro<ReservationEventRecord>(registry, value)),
};

export interface LiveKafkaSourceDeps {
  kafka: Kafka;
  registry: SchemaRegistry;
  topics: LiveTopics;
  /**
   * This instance's own consumer group: every API instance reads every partition, so each can serve any tenant's
   * sockets. Not shared between instances, and not reused across restarts (main.ts adds a random suffix).
   */
  groupId: string;
  hub: LiveHub;
  logger: Logger;
  /** How long start() waits for the group join, ms. */
  joinTimeoutMs?: number;
}

/**
 * Feeds the hub from the event topics, one consumer for all of them. Starts at the end of each log as it was when
 * start() was called (sought explicitly once the group is joined, so a record produced after start() resolved is
 * always delivered); what happened before is the replay's business (replay.ts), not Kafka's. Each record is
 * decoded by its topic's decoder and published to the hub, which hands it to its tenant's connections only — the
 * hub does not queue, each connection bounds its own buffer — so memory is kafkajs' fetch size.
 * Offsets are committed only so a rejoin within this process continues where it was.
 * At least once: outbox repeats carry the same eventId, and connections drop repeats by it. An undecodable record
 * is logged and skipped (the producers dead-letter; the API only reads).
 */
export async function startLiveKafkaSource(deps: LiveKafkaSourceDeps): Promise<Service> {
  const { logger } = deps;
  const decoders = new Map<string, LiveDecoder>(
    (Object.keys(liveDecoders) as Array<keyof LiveTopics>).map((k) => [deps.topics[k], liveDecoders[k]]),
  );
  if (decoders.size !== Object.keys(liveDecoders).length)
    throw new PlatformError('CONFIG_INVALID', 'live updates: each record type needs its own topic');
  const admin = deps.kafka.admin();
  await admin.connect();
  const startOffsets = new Map<string, Map<number, string>>();
  try {
    for (const topic of decoders.keys())
      startOffsets.set(
        topic,
        new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high] as const)),
      );
  } finally {
    await admin.disconnect();
  }
  const consumer = deps.kafka.consumer({
    groupId: deps.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 100,
  });
  let sought = false;
  let joined: () => void = () => undefined;
  const joinedOnce = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    if (!sought) {
      sought = true;
      for (const [topic, offsets] of startOffsets)
        for (const partition of payload.memberAssignment[topic] ?? []) {
          const offset = offsets.get(partition);
          if (offset !== undefined) consumer.seek({ topic, partition, offset });
        }
    }
    joined();
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [...decoders.keys()], fromBeginning: false });
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ topic, partition, message }) => {
      const decode = decoders.get(topic);
      if (!message.value || !decode) return;
      let event: LiveEvent;
      try {
        event = await decode(deps.registry, message.value);
      } catch (error) {
        logger.warn(
          { err: error, topic, partition, offset: message.offset },
          'undecodable record skipped by live updates',
        );
        return;
      }
      deps.hub.publish(event);
    },
  });
  const timeoutMs = deps.joinTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      joinedOnce,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new PlatformError('KAFKA_UNAVAILABLE', `live updates: no group join within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  logger.info({ topics: [...decoders.keys()], groupId: deps.groupId }, 'live updates consuming');
  return { stop: () => consumer.disconnect() };
}
