import { randomUUID } from 'node:crypto';
import type { AvroSerde } from '../lib/kafka/avro.js';
import type { KeyedRecord } from '../lib/kafka/sink.js';
import type { SendOptions } from '../lib/kafka/batching-sink.js';
import { PlatformError, toPlatformError, type ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type {
  DeadLetterRecord,
  DeviceLocationRecord,
  DeviceStatusRecord,
  DownlinkOutcomeRecord,
  EventSource,
  JoinRecord,
  OrphanUplinkRecord,
  UplinkRecord,
} from '../schemas/avro/records.js';
import type { ChirpStackEvent } from './chirpstack/event-types.js';
import { detectEncoding, encodingOfContentType, parseChirpStackEvent } from './chirpstack/parse-event.js';
import { toParsedUplink } from './chirpstack/uplink-event.js';
import { decodeReading } from './codecs/index.js';
import type { Deduplicator } from './dedup.js';
import type { DeviceAssignment } from './device-directory.js';
import type { IngestMetrics } from './metrics.js';
import type { OrphanSighting, OrphanSink } from './orphans.js';

/** One event as a source received it, before anything was interpreted. */
export interface RawEvent {
  source: EventSource;
  /** ChirpStack event type as the source named it (MQTT topic, `?event=`, Kafka `event` header). */
  eventType: string;
  /** Where it came from (MQTT topic, HTTP path, topic/partition/offset), kept on dead letters. */
  origin: string;
  /** The Content-Type the source declared; undefined (MQTT, Kafka) means: tell JSON from protobuf by the body. */
  contentType?: string | undefined;
  body: Buffer;
  /** Epoch ms. */
  receivedAt: number;
}

export interface HandleOptions {
  /** DevEUI from the transport (MQTT topic, Kafka key), used on a dead letter when the body has none. */
  devEuiHint?: string | null;
  /** Stop waiting for Kafka (HTTP's bounded wait); the handle then rejects retriably. */
  signal?: AbortSignal;
}

/**
 * - published: a record on the event's topic (uplinks, joins, device-status, device-locations, downlink-outcomes);
 * - orphaned: an uplink of an unknown DevEUI, published on the orphan-uplinks topic;
 * - dead-lettered: on the dead-letter topic with a code, the reason and the original bytes;
 * - deduplicated: a copy of an event already durable, acknowledged without a record;
 * - ignored: a ChirpStack log event, counted by level and code (see README, "Ingest").
 */
export type Outcome = 'published' | 'orphaned' | 'dead-lettered' | 'deduplicated' | 'ignored';

export interface HandleResult {
  outcome: Outcome;
  eventId: string | null;
  tenantId: string | null;
  topic: string | null;
  error?: { code: ErrorCode; message: string };
}

export interface BridgeTopics {
  uplinks: string;
  joins: string;
  deviceStatus: string;
  deviceLocations: string;
  downlinkOutcomes: string;
  orphanUplinks: string;
  deadLetter: string;
}

export interface BridgeSerdes {
  uplink: AvroSerde<UplinkRecord>;
  join: AvroSerde<JoinRecord>;
  deviceStatus: AvroSerde<DeviceStatusRecord>;
  deviceLocation: AvroSerde<DeviceLocationRecord>;
  downlinkOutcome: AvroSerde<DownlinkOutcomeRecord>;
  orphanUplink: AvroSerde<OrphanUplinkRecord>;
  deadLetter: AvroSerde<DeadLetterRecord>;
}

export interface BridgeSink {
  send(topic: string, records: KeyedRecord[], options?: SendOptions): Promise<void>;
}

export interface BridgeDeps {
  resolveDevice(devEui: string): Promise<DeviceAssignment | null>;
  sink: BridgeSink;
  serdes: BridgeSerdes;
  topics: BridgeTopics;
  dedup: Deduplicator;
  orphans: OrphanSink;
  metrics: IngestMetrics;
  logger: Logger;
}

interface Target {
  topic: string;
  value: Buffer;
  outcome: 'published' | 'orphaned';
}

/**
 * The bridge's contract with every source: `handle` resolves once the event is durable in Kafka — as a record
 * on its topic, or as a dead letter carrying the original bytes — or is a duplicate of one that is, or is a
 * ChirpStack log event (counted, not published); only then may the source acknowledge it (MQTT PUBACK, HTTP
 * 2xx, Kafka offset commit). It rejects only with a retriable PlatformError (Kafka or the database unavailable,
 * the caller's signal aborted): the source must then not acknowledge, so the event is redelivered, not lost.
 *
 * Ordering: events of one DevEUI are handed to the sink in the order `handle` was called, whatever the
 * concurrency, so a device's records keep their order on its partition.
 */
export function createBridge(deps: BridgeDeps) {
  const { metrics, logger, topics, serdes } = deps;
  const sequencer = new KeyedSequencer();

  function deadLetterTarget(
    raw: RawEvent,
    contentType: string,
    error: PlatformError,
    known: { eventId: string | null; devEui: string | null; tenantId: string | null },
  ): Buffer {
    const record: DeadLetterRecord = {
      eventId: known.eventId ?? randomUUID(),
      tenantId: known.tenantId,
      devEui: known.devEui,
      source: raw.source,
      errorCode: error.code,
      reason: error.message,
      receivedAt: raw.receivedAt,
      contentType,
      origin: raw.origin,
      original: raw.body,
    };
    return serdes.deadLetter.encodeSync(record);
  }

  /** Publishes a dead letter; the result carries the code and reason (HTTP answers 400 with them). */
  async function sendDeadLetter(
    raw: RawEvent,
    contentType: string,
    error: PlatformError,
    known: { eventId: string | null; devEui: string | null; tenantId: string | null },
    signal: AbortSignal | undefined,
  ): Promise<HandleResult> {
    const value = deadLetterTarget(raw, contentType, error, known);
    await send(topics.deadLetter, known.devEui ?? raw.source, value, signal);
    logger.warn({ code: error.code, reason: error.message, origin: raw.origin }, 'event dead-lettered');
    return {
      outcome: 'dead-lettered',
      eventId: known.eventId,
      tenantId: known.tenantId,
      topic: topics.deadLetter,
      error: { code: error.code, message: error.message },
    };
  }

  function send(topic: string, key: string, value: Buffer, signal: AbortSignal | undefined): Promise<void> {
    const unavailable = (error: unknown) => {
      throw toPlatformError(error, 'KAFKA_UNAVAILABLE', true);
    };
    try {
      return deps.sink.send(topic, [{ key, value }], signal ? { signal } : {}).catch(unavailable);
    } catch (error) {
      return Promise.reject(toPlatformError(error, 'KAFKA_UNAVAILABLE', true));
    }
  }

  function buildTarget(raw: RawEvent, event: ChirpStackEvent, device: DeviceAssignment | null): Target {
    const common = {
      eventId: event.eventId,
      devEui: event.devEui,
      time: event.time,
      receivedAt: raw.receivedAt,
      source: raw.source,
      applicationId: event.applicationId,
    };
    if (event.type === 'up' && !device) {
      const record: OrphanUplinkRecord = {
        ...common,
        tenantId: null,
        chirpstackTenantId: event.tenantId,
        chirpstackTenantName: event.tenantName,
        deviceName: event.deviceName,
        fCnt: event.fCnt,
        fPort: event.fPort,
        payload: event.payload,
      };
      return {
        topic: topics.orphanUplinks,
        value: serdes.orphanUplink.encodeSync(record),
        outcome: 'orphaned',
      };
    }
    if (!device) {
      throw new PlatformError(
        'DEVICE_UNKNOWN',
        `device ${event.devEui} is not registered (${event.type} event)`,
      );
    }
    if (device.status === 'decommissioned') {
      // Still registered (not an orphan), no longer the tenant's data: kept as a dead letter with its bytes.
      throw new PlatformError(
        'DEVICE_DECOMMISSIONED',
        `device ${event.devEui} is decommissioned (${event.type} event); not published`,
      );
    }
    const owned = { ...common, tenantId: device.tenantId };
    switch (event.type) {
      case 'up': {
        if (device.kind === 'display') {
          // Displays only receive commands; an uplink from one is unexpected. Kept as a dead letter, not dropped.
          throw new PlatformError(
            'EVENT_UNSUPPORTED',
            `uplink from display device ${event.devEui} is not processed`,
          );
        }
        const uplink = toParsedUplink(event);
        const { codec, reading } = decodeReading(
          device.codec ?? '',
          uplink.fPort,
          uplink.payload,
          uplink.object,
        );
        // Field by field, not spread: this is the hot path, and V8 copies `{ ...a, x, ...b }` slowly.
        const record: UplinkRecord = {
          eventId: event.eventId,
          tenantId: device.tenantId,
          devEui: event.devEui,
          spaceId: device.spaceId,
          time: event.time,
          receivedAt: raw.receivedAt,
          source: raw.source,
          applicationId: event.applicationId,
          fCnt: uplink.fCnt,
          fPort: uplink.fPort,
          codec,
          occupied: reading.occupied,
          batteryVolts: reading.batteryVolts,
          temperatureC: reading.temperatureC,
          rssi: uplink.rssi,
          snr: uplink.snr,
          gatewayIds: uplink.gatewayIds,
          payload: uplink.payload,
          frameType: reading.frameType,
          batteryStatus: reading.batteryStatus,
        };
        return {
          topic: topics.uplinks,
          value: serdes.uplink.encodeSync(record),
          outcome: 'published',
        };
      }
      case 'join': {
        const record: JoinRecord = { ...owned, devAddr: event.devAddr };
        return { topic: topics.joins, value: serdes.join.encodeSync(record), outcome: 'published' };
      }
      case 'status': {
        const record: DeviceStatusRecord = {
          ...owned,
          margin: event.margin,
          externalPowerSource: event.externalPowerSource,
          batteryLevel: event.batteryLevel,
        };
        return {
          topic: topics.deviceStatus,
          value: serdes.deviceStatus.encodeSync(record),
          outcome: 'published',
        };
      }
      case 'location': {
        const record: DeviceLocationRecord = {
          ...owned,
          latitude: event.latitude,
          longitude: event.longitude,
          altitude: event.altitude,
          locationSource: event.source,
          accuracy: event.accuracy,
        };
        return {
          topic: topics.deviceLocations,
          value: serdes.deviceLocation.encodeSync(record),
          outcome: 'published',
        };
      }
      case 'ack':
      case 'txack': {
        const record: DownlinkOutcomeRecord =
          event.type === 'ack'
            ? {
                ...owned,
                kind: 'ACK',
                queueItemId: event.queueItemId,
                acknowledged: event.acknowledged,
                fCntDown: event.fCntDown,
                downlinkId: null,
                gatewayId: null,
              }
            : {
                ...owned,
                kind: 'TXACK',
                queueItemId: event.queueItemId,
                acknowledged: null,
                fCntDown: event.fCntDown,
                downlinkId: event.downlinkId,
                gatewayId: event.gatewayId,
              };
        return {
          topic: topics.downlinkOutcomes,
          value: serdes.downlinkOutcome.encodeSync(record),
          outcome: 'published',
        };
      }
    }
    throw new PlatformError('EVENT_UNSUPPORTED', `${event.type} events are not routed`);
  }

  /**
   * The ordered part (one DevEUI at a time): resolve, dedup claim, build, hand to the sink. Returns the wait for
   * durability boxed, so the next event of the device can start while this one is in flight.
   */
  async function route(
    raw: RawEvent,
    contentType: string,
    event: ChirpStackEvent,
    signal: AbortSignal | undefined,
  ): Promise<{ durable: Promise<HandleResult> }> {
    const device = await deps.resolveDevice(event.devEui);
    const tenantId = device?.tenantId ?? null;
    const keys = [`id:${event.eventId}`];
    if (event.type === 'up') {
      keys.push(
        `fcnt:${tenantId ?? `cs-${event.tenantId ?? ''}`}:${event.devEui}:${event.devAddr ?? ''}:${event.fCnt}`,
      );
    }
    const claim = await deps.dedup.begin(keys);
    if (!claim) {
      return {
        durable: Promise.resolve({ outcome: 'deduplicated', eventId: event.eventId, tenantId, topic: null }),
      };
    }
    try {
      let pending: Promise<HandleResult>;
      try {
        const target = buildTarget(raw, event, device);
        pending = send(target.topic, event.devEui, target.value, signal).then(() => ({
          outcome: target.outcome,
          eventId: event.eventId,
          tenantId,
          topic: target.topic,
        }));
      } catch (thrown) {
        const error = toPlatformError(thrown, 'ENCODE_FAILED');
        if (error.retriable) throw error;
        pending = sendDeadLetter(
          raw,
          contentType,
          error,
          { eventId: event.eventId, devEui: event.devEui, tenantId },
          signal,
        );
      }
      const durable = pending.then(
        async (result) => {
          await claim.commit();
          if (!device) await noteOrphan(raw, event);
          return result;
        },
        (error: unknown) => {
          claim.abort();
          throw error;
        },
      );
      durable.catch(() => {});
      return { durable };
    } catch (error) {
      claim.abort();
      throw error;
    }
  }

  async function noteOrphan(raw: RawEvent, event: ChirpStackEvent): Promise<void> {
    try {
      await deps.orphans.note({
        devEui: event.devEui,
        applicationId: event.applicationId,
        chirpstackTenantId: event.tenantId,
        chirpstackTenantName: event.tenantName,
        deviceName: event.deviceName,
        eventType: event.type,
        seenAt: raw.receivedAt,
        uplink: event.type === 'up' ? orphanUplinkOf(event) : undefined,
      });
    } catch (error) {
      logger.error({ err: error, devEui: event.devEui }, 'recording an orphan device failed');
    }
  }

  async function process(raw: RawEvent, options: HandleOptions): Promise<HandleResult> {
    const encoding = encodingOfContentType(raw.contentType) ?? detectEncoding(raw.body);
    const contentType = encoding === 'json' ? 'application/json' : 'application/protobuf';
    let event: ChirpStackEvent;
    try {
      event = parseChirpStackEvent(raw.eventType, raw.body, encoding, raw.receivedAt);
    } catch (thrown) {
      const error = toPlatformError(thrown, 'PAYLOAD_INVALID');
      if (error.retriable) throw error;
      const devEui = options.devEuiHint ? options.devEuiHint.toUpperCase() : null;
      return sendDeadLetter(
        raw,
        contentType,
        error,
        { eventId: null, devEui, tenantId: null },
        options.signal,
      );
    }
    if (event.type === 'log') {
      metrics.chirpstackLog.inc({ level: event.level, code: event.code });
      if (event.level !== 'INFO') {
        logger.warn({ devEui: event.devEui, level: event.level, code: event.code }, event.description);
      }
      return { outcome: 'ignored', eventId: event.eventId, tenantId: null, topic: null };
    }
    const acquired = sequencer.acquire(event.devEui);
    const turn = acquired instanceof Promise ? await acquired : acquired;
    let routed: { durable: Promise<HandleResult> };
    try {
      routed = await route(raw, contentType, event, options.signal);
    } finally {
      turn.release();
    }
    return routed.durable;
  }

  return {
    async handle(raw: RawEvent, options: HandleOptions = {}): Promise<HandleResult> {
      const { source } = raw;
      metrics.received.inc({ source, event: raw.eventType });
      let result: HandleResult;
      try {
        result = await process(raw, options);
      } catch (thrown) {
        const error = toPlatformError(thrown, 'INTERNAL', true);
        metrics.notAcknowledged.inc({ source, code: error.code });
        throw error.retriable
          ? error
          : new PlatformError(error.code, error.message, { cause: error, retriable: true });
      }
      const tenant = result.tenantId ?? '';
      switch (result.outcome) {
        case 'published':
        case 'orphaned':
          metrics.published.inc({ source, tenant, topic: result.topic ?? '' });
          metrics.publishSeconds.observe({ source }, (Date.now() - raw.receivedAt) / 1000);
          break;
        case 'dead-lettered':
          metrics.deadLettered.inc({ source, tenant, code: result.error?.code ?? 'INTERNAL' });
          metrics.publishSeconds.observe({ source }, (Date.now() - raw.receivedAt) / 1000);
          break;
        case 'deduplicated':
          metrics.deduplicated.inc({ source, event: raw.eventType });
          break;
        case 'ignored':
          metrics.ignored.inc({ source, event: raw.eventType });
          break;
      }
      return result;
    },
  };
}

export type Bridge = ReturnType<typeof createBridge>;

function orphanUplinkOf(event: Extract<ChirpStackEvent, { type: 'up' }>): OrphanSighting['uplink'] {
  const { fPort, rssi, snr, payload } = toParsedUplink(event);
  return { fPort, rssi, snr, payload };
}

/** Serialises work per key: a turn is given when every earlier holder of the key released it. */
export class KeyedSequencer {
  /** Key -> the waiters behind its current holder (an empty list: held, nobody waiting). */
  readonly #waiting = new Map<string, Array<() => void>>();

  /**
   * The turn itself when the key is free (no promise, no microtask: the common case, one event of a device at a
   * time), else a promise of it, in call order.
   */
  acquire(key: string): Turn | Promise<Turn> {
    const waiting = this.#waiting.get(key);
    if (!waiting) {
      this.#waiting.set(key, []);
      return this.#turn(key);
    }
    return new Promise((resolve) => waiting.push(() => resolve(this.#turn(key))));
  }

  #turn(key: string): Turn {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const waiting = this.#waiting.get(key);
        const next = waiting?.shift();
        if (next) next();
        else this.#waiting.delete(key);
      },
    };
  }

  /** Keys held. */
  get size(): number {
    return this.#waiting.size;
  }
}

export interface Turn {
  release(): void;
}
