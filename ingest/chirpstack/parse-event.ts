import integrationPb from '@chirpstack/chirpstack-api/integration/integration_pb.js';
import commonPb from '@chirpstack/chirpstack-api/common/common_pb.js';
import { z } from 'zod';
import { PlatformError } from '../../lib/errors.js';
import { derivedEventId, formatTimestamp, parseEventTime } from './event-id.js';
import {
  chirpstackEventTypes,
  logLevels,
  type ChirpStackEvent,
  type ChirpStackEventType,
  type EventBase,
  type EventEncoding,
} from './event-types.js';

/*
 * Zod schemas of ChirpStack v4 events as its JSON marshaller writes them (MQTT json=true, HTTP integration JSON):
 * camelCase, fields at their protobuf default omitted (hence the defaults below: fCnt 0, adr false, margin 0, ...),
 * enums as their names, bytes as base64, timestamps as RFC 3339. Protobuf input is first mapped to this same
 * shape (toJsonShape below), so both encodings go through one validation and one normalisation.
 */
const devEui = z.string().regex(/^[0-9a-fA-F]{16}$/, 'devEui must be 16 hex characters');
const uint32 = z.union([
  z.number().int().min(0).max(0xffffffff),
  z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().max(0xffffffff)),
]);
/** A protobuf enum as ChirpStack's JSON writes it (its name); a number is mapped to its name too. */
const enumName = (names: object) => {
  const byNumber = new Map(Object.entries(names).map(([name, n]) => [n as number, name]));
  return z.union([
    z.string().min(1),
    z
      .number()
      .int()
      .transform((n) => byNumber.get(n) ?? String(n)),
  ]);
};

const deviceInfo = z.object({
  tenantId: z.string().optional(),
  tenantName: z.string().optional(),
  applicationId: z.string().default(''),
  applicationName: z.string().optional(),
  deviceProfileId: z.string().optional(),
  deviceProfileName: z.string().optional(),
  deviceName: z.string().optional(),
  devEui,
  tags: z.record(z.string()).default({}),
});

const common = {
  time: z.string().optional(),
  deviceInfo,
};
const deduplicationId = z.string().uuid();

const schemas = {
  up: z.object({
    ...common,
    deduplicationId,
    devAddr: z.string().optional(),
    adr: z.boolean().default(false),
    dr: z.number().int().min(0).default(0),
    fCnt: uint32.default(0),
    fPort: z.number().int().min(0).max(255).default(0),
    confirmed: z.boolean().default(false),
    data: z.string().base64().default(''),
    object: z.record(z.unknown()).optional(),
    rxInfo: z
      .array(
        z.object({
          gatewayId: z.string(),
          rssi: z.number().int().default(0),
          snr: z.number().default(0),
        }),
      )
      .default([]),
    txInfo: z.object({ frequency: uint32.optional() }).optional(),
    regionConfigId: z.string().optional(),
  }),
  join: z.object({
    ...common,
    deduplicationId,
    devAddr: z.string().optional(),
    regionConfigId: z.string().optional(),
  }),
  status: z.object({
    ...common,
    deduplicationId,
    margin: z.number().int().default(0),
    externalPowerSource: z.boolean().default(false),
    batteryLevelUnavailable: z.boolean().default(false),
    batteryLevel: z.number().min(0).max(100).default(0),
  }),
  ack: z.object({
    ...common,
    deduplicationId,
    queueItemId: z.string().optional(),
    acknowledged: z.boolean().default(false),
    fCntDown: uint32.default(0),
  }),
  txack: z.object({
    ...common,
    downlinkId: uint32.default(0),
    queueItemId: z.string().optional(),
    fCntDown: uint32.default(0),
    gatewayId: z.string().optional(),
  }),
  log: z.object({
    ...common,
    level: enumName(integrationPb.LogLevel).default('INFO').pipe(z.enum(logLevels)),
    code: enumName(integrationPb.LogCode).default('UNKNOWN'),
    description: z.string().default(''),
    context: z.record(z.string()).default({}),
  }),
  location: z.object({
    ...common,
    deduplicationId,
    location: z.object({
      latitude: z.number().default(0),
      longitude: z.number().default(0),
      altitude: z.number().default(0),
      source: enumName(commonPb.LocationSource).default('UNKNOWN'),
      accuracy: z.number().default(0),
    }),
  }),
} satisfies Record<ChirpStackEventType, z.ZodTypeAny>;

type JsonShape = { [K in ChirpStackEventType]: z.infer<(typeof schemas)[K]> };

export function isChirpStackEventType(type: string): type is ChirpStackEventType {
  return (chirpstackEventTypes as readonly string[]).includes(type);
}

/**
 * How a body is encoded, for sources that do not say (MQTT carries no content type). A ChirpStack JSON event is
 * an object, so it starts with `{` (after whitespace); a protobuf event never does, because 0x7b would be field
 * 15 as a deprecated group, which no ChirpStack event message has.
 */
export function detectEncoding(body: Buffer): EventEncoding {
  for (const byte of body) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x7b ? 'json' : 'protobuf';
  }
  return 'protobuf';
}

/** The encoding a Content-Type names; undefined when it names neither (then use detectEncoding). */
export function encodingOfContentType(contentType: string | undefined): EventEncoding | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (
    type === 'application/protobuf' ||
    type === 'application/x-protobuf' ||
    type === 'application/octet-stream'
  )
    return 'protobuf';
  return undefined;
}

/**
 * Parses one ChirpStack v4 integration event of the given type (the MQTT topic's last segment, the HTTP
 * `?event=` parameter or the Kafka `event` header) into the internal envelope.
 *
 * Pure. Throws PlatformError, never retriable: EVENT_UNSUPPORTED for a type other than up, join, status, ack,
 * txack, log, location (e.g. `integration`); PAYLOAD_INVALID for a body that is not such an event (not JSON or
 * protobuf of that message, a missing deduplicationId or deviceInfo, a DevEUI that is not 16 hex characters,
 * an unreadable time). `receivedAt` (epoch ms) stands in for a missing event time.
 */
export function parseChirpStackEvent(
  type: string,
  body: Buffer,
  encoding: EventEncoding,
  receivedAt: number,
): ChirpStackEvent {
  if (!isChirpStackEventType(type)) {
    throw new PlatformError(
      'EVENT_UNSUPPORTED',
      `ChirpStack event type ${JSON.stringify(type)} is not supported`,
    );
  }
  const raw = encoding === 'json' ? readJson(body) : toJsonShape(type, body);
  const result = schemas[type].safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new PlatformError(
      'PAYLOAD_INVALID',
      `not a ChirpStack v4 ${type} event (${encoding}): ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  return normalise({ type, event: result.data } as Tagged, receivedAt);
}

function readJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new PlatformError('PAYLOAD_INVALID', 'event body is not valid JSON', { cause: error });
  }
}

type Tagged = { [K in ChirpStackEventType]: { type: K; event: JsonShape[K] } }[ChirpStackEventType];

function normalise(tagged: Tagged, receivedAt: number): ChirpStackEvent {
  const e = tagged.event;
  const time = e.time === undefined ? null : parseEventTime(e.time);
  if (e.time !== undefined && time === null) {
    throw new PlatformError(
      'PAYLOAD_INVALID',
      `not a ChirpStack v4 ${tagged.type} event: time: not RFC 3339`,
    );
  }
  const d = e.deviceInfo;
  const base = (eventId: string, eventIdDerived: boolean): EventBase => ({
    eventId,
    eventIdDerived,
    devEui: d.devEui.toUpperCase(),
    applicationId: d.applicationId,
    applicationName: orNull(d.applicationName),
    tenantId: orNull(d.tenantId),
    tenantName: orNull(d.tenantName),
    deviceName: orNull(d.deviceName),
    deviceProfileId: orNull(d.deviceProfileId),
    deviceProfileName: orNull(d.deviceProfileName),
    tags: d.tags,
    time: time?.ms ?? receivedAt,
  });
  const canonicalTime = time?.canonical ?? null;
  switch (tagged.type) {
    case 'up': {
      const u = tagged.event;
      return {
        ...base(u.deduplicationId.toLowerCase(), false),
        type: 'up',
        devAddr: orNull(u.devAddr),
        fCnt: u.fCnt,
        fPort: u.fPort,
        confirmed: u.confirmed,
        adr: u.adr,
        dr: u.dr,
        payload: Buffer.from(u.data, 'base64'),
        object: u.object,
        rxInfo: u.rxInfo.map((r) => ({ gatewayId: r.gatewayId, rssi: r.rssi, snr: r.snr })),
        frequency: u.txInfo?.frequency || null,
        regionConfigId: orNull(u.regionConfigId),
      };
    }
    case 'join': {
      const j = tagged.event;
      return {
        ...base(j.deduplicationId.toLowerCase(), false),
        type: 'join',
        devAddr: orNull(j.devAddr),
        regionConfigId: orNull(j.regionConfigId),
      };
    }
    case 'status': {
      const s = tagged.event;
      return {
        ...base(s.deduplicationId.toLowerCase(), false),
        type: 'status',
        margin: s.margin,
        externalPowerSource: s.externalPowerSource,
        batteryLevel: s.batteryLevelUnavailable || s.externalPowerSource ? null : s.batteryLevel,
      };
    }
    case 'ack': {
      const a = tagged.event;
      return {
        ...base(a.deduplicationId.toLowerCase(), false),
        type: 'ack',
        queueItemId: orNull(a.queueItemId),
        acknowledged: a.acknowledged,
        fCntDown: a.fCntDown,
      };
    }
    case 'txack': {
      const t = tagged.event;
      const fields = [d.devEui.toUpperCase(), canonicalTime, t.downlinkId, orNull(t.queueItemId), t.fCntDown];
      return {
        ...base(derivedEventId('txack', [...fields, orNull(t.gatewayId)]), true),
        type: 'txack',
        downlinkId: t.downlinkId,
        queueItemId: orNull(t.queueItemId),
        fCntDown: t.fCntDown,
        gatewayId: orNull(t.gatewayId),
      };
    }
    case 'log': {
      const l = tagged.event;
      const context = Object.keys(l.context)
        .sort()
        .flatMap((k) => [k, l.context[k] ?? '']);
      const id = derivedEventId('log', [
        d.devEui.toUpperCase(),
        canonicalTime,
        l.level,
        l.code,
        l.description,
        ...context,
      ]);
      return {
        ...base(id, true),
        type: 'log',
        level: l.level,
        code: l.code,
        description: l.description,
        context: l.context,
      };
    }
    case 'location': {
      const g = tagged.event;
      return { ...base(g.deduplicationId.toLowerCase(), false), type: 'location', ...g.location };
    }
  }
}

function orNull(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}

/*
 * Protobuf input. google-protobuf's toObject() uses its own names (rxInfoList, tagsMap, contextMap) and enum
 * numbers, so each message is mapped field by field to ChirpStack's JSON names instead. Proto3 cannot tell an
 * unset scalar from its default, so defaults are passed through; the JSON schema's defaults are the same values.
 */
type Message = {
  getTime(): { getSeconds(): number; getNanos(): number } | undefined;
  getDeviceInfo(): InstanceType<typeof integrationPb.DeviceInfo> | undefined;
};

const messages = {
  up: integrationPb.UplinkEvent,
  join: integrationPb.JoinEvent,
  status: integrationPb.StatusEvent,
  ack: integrationPb.AckEvent,
  txack: integrationPb.TxAckEvent,
  log: integrationPb.LogEvent,
  location: integrationPb.LocationEvent,
} as const;

function deserialize<T>(type: ChirpStackEventType, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new PlatformError('PAYLOAD_INVALID', `event body is not a protobuf ${messages[type].name}`, {
      cause: error,
    });
  }
}

function commonShape(m: Message): Record<string, unknown> {
  const t = m.getTime();
  const info = m.getDeviceInfo();
  return {
    time: t ? formatTimestamp(t.getSeconds(), t.getNanos()) : undefined,
    deviceInfo: info && {
      tenantId: info.getTenantId(),
      tenantName: info.getTenantName(),
      applicationId: info.getApplicationId(),
      applicationName: info.getApplicationName(),
      deviceProfileId: info.getDeviceProfileId(),
      deviceProfileName: info.getDeviceProfileName(),
      deviceName: info.getDeviceName(),
      devEui: info.getDevEui(),
      tags: Object.fromEntries(info.getTagsMap().getEntryList()),
    },
  };
}

function toJsonShape(type: ChirpStackEventType, body: Buffer): Record<string, unknown> {
  const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  switch (type) {
    case 'up': {
      const m = deserialize(type, () => integrationPb.UplinkEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        deduplicationId: m.getDeduplicationId(),
        devAddr: m.getDevAddr(),
        adr: m.getAdr(),
        dr: m.getDr(),
        fCnt: m.getFCnt(),
        fPort: m.getFPort(),
        confirmed: m.getConfirmed(),
        data: m.getData_asB64(),
        object: m.getObject()?.toJavaScript(),
        rxInfo: m
          .getRxInfoList()
          .map((r) => ({ gatewayId: r.getGatewayId(), rssi: r.getRssi(), snr: r.getSnr() })),
        txInfo: m.hasTxInfo() ? { frequency: m.getTxInfo()?.getFrequency() } : undefined,
        regionConfigId: m.getRegionConfigId(),
      };
    }
    case 'join': {
      const m = deserialize(type, () => integrationPb.JoinEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        deduplicationId: m.getDeduplicationId(),
        devAddr: m.getDevAddr(),
        regionConfigId: m.getRegionConfigId(),
      };
    }
    case 'status': {
      const m = deserialize(type, () => integrationPb.StatusEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        deduplicationId: m.getDeduplicationId(),
        margin: m.getMargin(),
        externalPowerSource: m.getExternalPowerSource(),
        batteryLevelUnavailable: m.getBatteryLevelUnavailable(),
        batteryLevel: m.getBatteryLevel(),
      };
    }
    case 'ack': {
      const m = deserialize(type, () => integrationPb.AckEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        deduplicationId: m.getDeduplicationId(),
        queueItemId: m.getQueueItemId(),
        acknowledged: m.getAcknowledged(),
        fCntDown: m.getFCntDown(),
      };
    }
    case 'txack': {
      const m = deserialize(type, () => integrationPb.TxAckEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        downlinkId: m.getDownlinkId(),
        queueItemId: m.getQueueItemId(),
        fCntDown: m.getFCntDown(),
        gatewayId: m.getGatewayId(),
      };
    }
    case 'log': {
      const m = deserialize(type, () => integrationPb.LogEvent.deserializeBinary(bytes));
      return {
        ...commonShape(m),
        level: m.getLevel(),
        code: m.getCode(),
        description: m.getDescription(),
        context: Object.fromEntries(m.getContextMap().getEntryList()),
      };
    }
    case 'location': {
      const m = deserialize(type, () => integrationPb.LocationEvent.deserializeBinary(bytes));
      const l = m.getLocation();
      return {
        ...commonShape(m),
        deduplicationId: m.getDeduplicationId(),
        location: l && {
          latitude: l.getLatitude(),
          longitude: l.getLongitude(),
          altitude: l.getAltitude(),
          source: l.getSource(),
          accuracy: l.getAccuracy(),
        },
      };
    }
  }
}
