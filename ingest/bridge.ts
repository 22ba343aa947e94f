import { randomUUID } from 'node:crypto';
import type { AvroSerde } from '../lib/kafka/avro.js';
import type { RecordSink } from '../lib/kafka/sink.js';
import { PlatformError, toPlatformError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { DeadLetterRecord, EventSource, UplinkRecord } from '../schemas/avro/records.js';
import { parseUplinkJson } from './chirpstack/uplink-event.js';
import { decodeReading } from './codecs/index.js';
import type { DeviceAssignment } from './device-directory.js';
import type { IngestMetrics } from './metrics.js';

/** One event as a source received it, before anything was interpreted. */
export interface RawEvent {
  source: EventSource;
  eventType: string;
  /** Where it came from (MQTT topic, HTTP path, topic/partition/offset), kept on dead letters. */
  origin: string;
  contentType: string;
  body: Buffer;
  receivedAt: number;
}

export interface BridgeDeps {
  resolveDevice(devEui: string): Promise<DeviceAssignment | null>;
  sink: RecordSink;
  uplinkSerde: AvroSerde<UplinkRecord>;
  deadLetterSerde: AvroSerde<DeadLetterRecord>;
  topics: { uplinks: string; deadLetter: string };
  metrics: IngestMetrics;
  logger: Logger;
}

export type Outcome = 'published' | 'dead-lettered' | 'ignored';

/**
 * The bridge's contract with every source: `handle` resolves once the event is durable in Kafka, either as a
 * record on the uplinks topic or as a dead letter carrying the original bytes; only then may the source
 * acknowledge it (MQTT PUBACK, HTTP 2xx). It rejects only with a retriable error (Kafka or the database
 * unavailable): the source must then not acknowledge, so the event is redelivered rather than lost.
 */
export function createBridge(deps: BridgeDeps) {
  const { metrics, logger } = deps;

  async function toUplinkRecord(raw: RawEvent): Promise<{ record: UplinkRecord; value: Buffer }> {
    const uplink = parseUplinkJson(raw.body, raw.receivedAt);
    const device = await deps.resolveDevice(uplink.devEui);
    if (!device) throw new PlatformError('DEVICE_UNKNOWN', `device ${uplink.devEui} is not registered`);
    const { codec, reading } = decodeReading(device.codec, uplink.fPort, uplink.payload, uplink.object);
    const record: UplinkRecord = {
      eventId: uplink.eventId,
      tenantId: device.tenantId,
      devEui: uplink.devEui,
      spaceId: device.spaceId,
      time: uplink.time,
      receivedAt: raw.receivedAt,
      source: raw.source,
      applicationId: uplink.applicationId,
      fCnt: uplink.fCnt,
      fPort: uplink.fPort,
      codec,
      ...reading,
      rssi: uplink.rssi,
      snr: uplink.snr,
      gatewayIds: uplink.gatewayIds,
      payload: uplink.payload,
    };
    return { record, value: await deps.uplinkSerde.encode(record) };
  }

  async function deadLetter(raw: RawEvent, error: PlatformError, devEui: string | null): Promise<void> {
    const record: DeadLetterRecord = {
      eventId: randomUUID(),
      tenantId: null,
      devEui,
      source: raw.source,
      errorCode: error.code,
      reason: error.message,
      receivedAt: raw.receivedAt,
      contentType: raw.contentType,
      origin: raw.origin,
      original: raw.body,
    };
    const value = await deps.deadLetterSerde.encode(record);
    await deps.sink.send(deps.topics.deadLetter, [{ key: devEui ?? raw.source, value }]);
    metrics.deadLettered.inc({ source: raw.source, code: error.code });
    logger.warn({ code: error.code, reason: error.message, origin: raw.origin }, 'event dead-lettered');
  }

  return {
    async handle(raw: RawEvent, devEuiHint: string | null = null): Promise<Outcome> {
      metrics.received.inc({ source: raw.source, event: raw.eventType });
      if (raw.eventType !== 'up') {
        metrics.ignored.inc({ source: raw.source, event: raw.eventType });
        return 'ignored';
      }
      let built: { record: UplinkRecord; value: Buffer };
      try {
        built = await toUplinkRecord(raw);
      } catch (thrown) {
        const error = toPlatformError(thrown, 'PAYLOAD_INVALID');
        if (error.retriable) throw error;
        await deadLetter(raw, error, devEuiHint);
        return 'dead-lettered';
      }
      try {
        await deps.sink.send(deps.topics.uplinks, [{ key: built.record.devEui, value: built.value }]);
      } catch (error) {
        throw new PlatformError('KAFKA_UNAVAILABLE', 'publishing the uplink failed', {
          cause: error,
          retriable: true,
        });
      }
      metrics.published.inc({ source: raw.source, tenant: built.record.tenantId });
      metrics.publishSeconds.observe({ source: raw.source }, (Date.now() - raw.receivedAt) / 1000);
      return 'published';
    },
  };
}

export type Bridge = ReturnType<typeof createBridge>;
