import { randomUUID } from 'node:crypto';
import integrationPb from '@chirpstack/chirpstack-api/integration/integration_pb.js';
import commonPb from '@chirpstack/chirpstack-api/common/common_pb.js';
import gwPb from '@chirpstack/chirpstack-api/gw/gw_pb.js';
import type { MqttClient } from 'mqtt';
import { eventTopic } from '../chirpstack/mqtt-topic.js';
import type { ChirpStackEventType, EventEncoding } from '../chirpstack/event-types.js';
import { Struct, Timestamp } from '../chirpstack/protobuf-runtime.js';

/**
 * Builds ChirpStack v4 integration events exactly as ChirpStack's JSON marshaller writes them (MQTT json=true and
 * the HTTP integration): protobuf defaults are omitted (fCnt 0, fPort 0, adr false, margin 0, ...), enums are
 * names, `data` is base64, `object` only when a codec ran. `encodeEvent` turns any of them into the JSON body or
 * the binary protobuf ChirpStack sends with json=false, built with the generated classes' setters. Used by the
 * demo, the tests and the load generators.
 */
export const defaultApplicationId = '3f1c2a7e-5b8d-4e0f-9a6b-1c2d3e4f5a6b';
export const defaultTenantId = '52f14cd4-c6f1-4fbd-8f87-4025e1d49242';

/** What every simulated event needs: the device and, optionally, the ids and time ChirpStack would assign. */
export interface SimulatedDevice {
  devEui: string;
  applicationId?: string;
  tenantId?: string;
  time?: Date;
  deduplicationId?: string;
}

export interface SimulatedUplink extends SimulatedDevice {
  fCnt: number;
  fPort: number;
  payload: Buffer;
  gateways?: Array<{ gatewayId: string; rssi: number; snr: number }>;
  object?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function deviceInfo(d: SimulatedDevice): Json {
  return {
    tenantId: d.tenantId ?? defaultTenantId,
    tenantName: 'ChirpStack',
    applicationId: d.applicationId ?? defaultApplicationId,
    applicationName: 'parking',
    deviceProfileId: 'a1b2c3d4-0000-4000-8000-000000000001',
    deviceProfileName: 'TBMS100',
    deviceName: `sensor-${d.devEui.toLowerCase()}`,
    devEui: d.devEui.toLowerCase(),
    deviceClassEnabled: 'CLASS_A',
    tags: {},
  };
}

function header(d: SimulatedDevice, withDeduplicationId = true): Json {
  return {
    ...(withDeduplicationId ? { deduplicationId: d.deduplicationId ?? randomUUID() } : {}),
    time: (d.time ?? new Date()).toISOString(),
    deviceInfo: deviceInfo(d),
  };
}

/** Sets `event[key] = value` unless value is the protobuf default, as ChirpStack's JSON omits defaults. */
function setUnlessDefault(event: Json, key: string, value: unknown): void {
  if (value === 0 || value === false || value === '' || value === undefined) return;
  event[key] = value;
}

export function uplinkEvent(u: SimulatedUplink): Json {
  const gateways = u.gateways ?? [{ gatewayId: '0016c001ff10a235', rssi: -97, snr: 7.5 }];
  const event: Json = {
    ...header(u),
    devAddr: '01fa2b3c',
    dr: 5,
    rxInfo: gateways.map((g, i) => {
      const rx: Json = {
        gatewayId: g.gatewayId,
        uplinkId: 1000 + i,
        context: 'AAAAAA==',
        metadata: { region_config_id: 'eu868', region_common_name: 'EU868' },
        crcStatus: 'CRC_OK',
      };
      setUnlessDefault(rx, 'rssi', g.rssi);
      setUnlessDefault(rx, 'snr', g.snr);
      return rx;
    }),
    txInfo: {
      frequency: 868100000,
      modulation: { lora: { bandwidth: 125000, spreadingFactor: 7, codeRate: 'CR_4_5' } },
    },
    regionConfigId: 'eu868',
  };
  setUnlessDefault(event, 'fCnt', u.fCnt);
  setUnlessDefault(event, 'fPort', u.fPort);
  if (u.payload.length > 0) event['data'] = u.payload.toString('base64');
  if (u.object) event['object'] = u.object;
  return event;
}

export function joinEvent(d: SimulatedDevice & { devAddr?: string }): Json {
  return { ...header(d), devAddr: d.devAddr ?? '01fa2b3c', regionConfigId: 'eu868' };
}

export interface SimulatedStatus extends SimulatedDevice {
  margin: number;
  externalPowerSource?: boolean;
  /** Percent; undefined means the device reported its level unavailable. */
  batteryLevel?: number;
}

export function statusEvent(s: SimulatedStatus): Json {
  const event = header(s);
  setUnlessDefault(event, 'margin', s.margin);
  setUnlessDefault(event, 'externalPowerSource', s.externalPowerSource);
  setUnlessDefault(event, 'batteryLevelUnavailable', s.batteryLevel === undefined);
  setUnlessDefault(event, 'batteryLevel', s.batteryLevel);
  return event;
}

export function ackEvent(
  a: SimulatedDevice & { queueItemId?: string; acknowledged: boolean; fCntDown: number },
): Json {
  const event = { ...header(a), queueItemId: a.queueItemId ?? randomUUID() };
  setUnlessDefault(event, 'acknowledged', a.acknowledged);
  setUnlessDefault(event, 'fCntDown', a.fCntDown);
  return event;
}

export interface SimulatedTxAck extends SimulatedDevice {
  downlinkId: number;
  queueItemId?: string;
  fCntDown: number;
  gatewayId?: string;
}

/** A txack has no deduplicationId in ChirpStack v4. */
export function txAckEvent(t: SimulatedTxAck): Json {
  const event: Json = {
    ...header(t, false),
    queueItemId: t.queueItemId ?? randomUUID(),
    gatewayId: t.gatewayId ?? '0016c001ff10a235',
    txInfo: { frequency: 869525000, power: 14 },
  };
  setUnlessDefault(event, 'downlinkId', t.downlinkId);
  setUnlessDefault(event, 'fCntDown', t.fCntDown);
  return event;
}

export interface SimulatedLog extends SimulatedDevice {
  level: 'INFO' | 'WARNING' | 'ERROR';
  code: keyof integrationPb.LogCodeMap;
  description: string;
  context?: Record<string, string>;
}

/** A log event has no deduplicationId in ChirpStack v4; INFO and UNKNOWN are the enum defaults, so omitted. */
export function logEvent(l: SimulatedLog): Json {
  const event: Json = { ...header(l, false), description: l.description, context: l.context ?? {} };
  if (l.level !== 'INFO') event['level'] = l.level;
  if (l.code !== 'UNKNOWN') event['code'] = l.code;
  return event;
}

export interface SimulatedLocation extends SimulatedDevice {
  latitude: number;
  longitude: number;
  altitude?: number;
  source: keyof commonPb.LocationSourceMap;
  accuracy?: number;
}

export function locationEvent(l: SimulatedLocation): Json {
  const location: Json = {};
  setUnlessDefault(location, 'latitude', l.latitude);
  setUnlessDefault(location, 'longitude', l.longitude);
  setUnlessDefault(location, 'altitude', l.altitude);
  if (l.source !== 'UNKNOWN') location['source'] = l.source;
  setUnlessDefault(location, 'accuracy', l.accuracy);
  return { ...header(l), location };
}

/** The body ChirpStack would send for this event: its JSON, or the binary protobuf of the same event. */
export function encodeEvent(type: ChirpStackEventType, event: Json, encoding: EventEncoding): Buffer {
  if (encoding === 'json') return Buffer.from(JSON.stringify(event));
  return Buffer.from(toProtobuf(type, event).serializeBinary());
}

const str = (o: Json, k: string): string => (typeof o[k] === 'string' ? o[k] : '');
const num = (o: Json, k: string): number => (typeof o[k] === 'number' ? o[k] : 0);
const bool = (o: Json, k: string): boolean => o[k] === true;
const obj = (o: Json, k: string): Json | undefined =>
  typeof o[k] === 'object' && o[k] !== null ? (o[k] as Json) : undefined;

function timestamp(text: string): InstanceType<typeof Timestamp> {
  const ms = Date.parse(text);
  const t = new Timestamp();
  t.setSeconds(Math.floor(ms / 1000));
  t.setNanos((ms % 1000) * 1e6);
  return t;
}

function deviceInfoMessage(json: Json): integrationPb.DeviceInfo {
  const info = new integrationPb.DeviceInfo();
  info.setTenantId(str(json, 'tenantId'));
  info.setTenantName(str(json, 'tenantName'));
  info.setApplicationId(str(json, 'applicationId'));
  info.setApplicationName(str(json, 'applicationName'));
  info.setDeviceProfileId(str(json, 'deviceProfileId'));
  info.setDeviceProfileName(str(json, 'deviceProfileName'));
  info.setDeviceName(str(json, 'deviceName'));
  info.setDevEui(str(json, 'devEui'));
  const deviceClass = str(json, 'deviceClassEnabled') as keyof commonPb.DeviceClassMap;
  info.setDeviceClassEnabled(commonPb.DeviceClass[deviceClass] ?? commonPb.DeviceClass.CLASS_A);
  for (const [k, v] of Object.entries(obj(json, 'tags') ?? {})) info.getTagsMap().set(k, String(v));
  return info;
}

interface CommonSetters {
  setTime(value?: InstanceType<typeof Timestamp>): void;
  setDeviceInfo(value?: integrationPb.DeviceInfo): void;
}

function withCommon<M extends CommonSetters>(message: M, json: Json): M {
  if (typeof json['time'] === 'string') message.setTime(timestamp(json['time']));
  const info = obj(json, 'deviceInfo');
  if (info) message.setDeviceInfo(deviceInfoMessage(info));
  return message;
}

function toProtobuf(type: ChirpStackEventType, json: Json) {
  switch (type) {
    case 'up': {
      const m = withCommon(new integrationPb.UplinkEvent(), json);
      m.setDeduplicationId(str(json, 'deduplicationId'));
      m.setDevAddr(str(json, 'devAddr'));
      m.setAdr(bool(json, 'adr'));
      m.setDr(num(json, 'dr'));
      m.setFCnt(num(json, 'fCnt'));
      m.setFPort(num(json, 'fPort'));
      m.setConfirmed(bool(json, 'confirmed'));
      m.setData(Buffer.from(str(json, 'data'), 'base64'));
      const object = obj(json, 'object');
      if (object) m.setObject(Struct.fromJavaScript(object as Parameters<typeof Struct.fromJavaScript>[0]));
      const rxInfo = Array.isArray(json['rxInfo']) ? (json['rxInfo'] as Json[]) : [];
      m.setRxInfoList(
        rxInfo.map((r) => {
          const rx = new gwPb.UplinkRxInfo();
          rx.setGatewayId(str(r, 'gatewayId'));
          rx.setUplinkId(num(r, 'uplinkId'));
          rx.setRssi(num(r, 'rssi'));
          rx.setSnr(num(r, 'snr'));
          rx.setCrcStatus(gwPb.CRCStatus.CRC_OK);
          return rx;
        }),
      );
      const txInfo = obj(json, 'txInfo');
      if (txInfo) {
        const tx = new gwPb.UplinkTxInfo();
        tx.setFrequency(num(txInfo, 'frequency'));
        m.setTxInfo(tx);
      }
      m.setRegionConfigId(str(json, 'regionConfigId'));
      return m;
    }
    case 'join': {
      const m = withCommon(new integrationPb.JoinEvent(), json);
      m.setDeduplicationId(str(json, 'deduplicationId'));
      m.setDevAddr(str(json, 'devAddr'));
      m.setRegionConfigId(str(json, 'regionConfigId'));
      return m;
    }
    case 'status': {
      const m = withCommon(new integrationPb.StatusEvent(), json);
      m.setDeduplicationId(str(json, 'deduplicationId'));
      m.setMargin(num(json, 'margin'));
      m.setExternalPowerSource(bool(json, 'externalPowerSource'));
      m.setBatteryLevelUnavailable(bool(json, 'batteryLevelUnavailable'));
      m.setBatteryLevel(num(json, 'batteryLevel'));
      return m;
    }
    case 'ack': {
      const m = withCommon(new integrationPb.AckEvent(), json);
      m.setDeduplicationId(str(json, 'deduplicationId'));
      m.setQueueItemId(str(json, 'queueItemId'));
      m.setAcknowledged(bool(json, 'acknowledged'));
      m.setFCntDown(num(json, 'fCntDown'));
      return m;
    }
    case 'txack': {
      const m = withCommon(new integrationPb.TxAckEvent(), json);
      m.setDownlinkId(num(json, 'downlinkId'));
      m.setQueueItemId(str(json, 'queueItemId'));
      m.setFCntDown(num(json, 'fCntDown'));
      m.setGatewayId(str(json, 'gatewayId'));
      return m;
    }
    case 'log': {
      const m = withCommon(new integrationPb.LogEvent(), json);
      const level = (str(json, 'level') || 'INFO') as keyof integrationPb.LogLevelMap;
      const code = (str(json, 'code') || 'UNKNOWN') as keyof integrationPb.LogCodeMap;
      m.setLevel(integrationPb.LogLevel[level]);
      m.setCode(integrationPb.LogCode[code]);
      m.setDescription(str(json, 'description'));
      for (const [k, v] of Object.entries(obj(json, 'context') ?? {})) m.getContextMap().set(k, String(v));
      return m;
    }
    case 'location': {
      const m = withCommon(new integrationPb.LocationEvent(), json);
      m.setDeduplicationId(str(json, 'deduplicationId'));
      const l = obj(json, 'location') ?? {};
      const location = new commonPb.Location();
      location.setLatitude(num(l, 'latitude'));
      location.setLongitude(num(l, 'longitude'));
      location.setAltitude(num(l, 'altitude'));
      const source = (str(l, 'source') || 'UNKNOWN') as keyof commonPb.LocationSourceMap;
      location.setSource(commonPb.LocationSource[source]);
      location.setAccuracy(num(l, 'accuracy'));
      m.setLocation(location);
      return m;
    }
  }
}

/** A Browan TBMS100 frame (fPort 102) with the given occupancy, 3.6 V and 21 °C. */
export function tbms100Payload(occupied: boolean): Buffer {
  return Buffer.from([occupied ? 1 : 0, 0x0b, 0x35, 0, 0, 0, 0, 0]);
}

/** A Nwave NPS405 parking-status frame (fPort 1); the previous state lasted `previousMinutes` (< 90). */
export function nps405ParkingStatus(occupied: boolean, previousMinutes = 10): Buffer {
  return Buffer.from([((previousMinutes & 0x7f) << 1) | (occupied ? 1 : 0)]);
}

/** A Bosch Parking Lot Sensor parking-status frame (fPort 1). */
export function boschParkingStatus(occupied: boolean): Buffer {
  return Buffer.from([occupied ? 1 : 0]);
}

/**
 * A frame counter for hand-run simulations: it grows by 10 per second of wall-clock time (32-bit, like
 * LoRaWAN's), so runs seconds apart never reuse an fCnt that the bridge would drop as a duplicate.
 */
export function nextFCnt(now = Date.now()): number {
  return Math.floor(now / 100) % 4_294_967_296;
}

/** Publishes one uplink on ChirpStack's MQTT topic layout at QoS 1; resolves when the broker acknowledged. */
export async function publishUplink(client: MqttClient, u: SimulatedUplink): Promise<Json> {
  const event = uplinkEvent(u);
  await publishEvent(client, 'up', event, 'json');
  return event;
}

/** Publishes any built event, JSON or protobuf, on its ChirpStack MQTT topic at QoS 1. */
export async function publishEvent(
  client: MqttClient,
  type: ChirpStackEventType,
  event: Json,
  encoding: EventEncoding,
): Promise<void> {
  const info = obj(event, 'deviceInfo') ?? {};
  const topic = eventTopic(str(info, 'applicationId') || defaultApplicationId, str(info, 'devEui'), type);
  await client.publishAsync(topic, encodeEvent(type, event, encoding), { qos: 1 });
}

/** A `command/down` message as ChirpStack's MQTT integration accepts it (see parseCommandDown). */
export interface CommandDown {
  applicationId: string;
  /** Lower-case hex, as in the topic. */
  devEui: string;
  /** The device-queue item id ChirpStack reports back as `queueItemId`; '' when the sender gave none. */
  id: string;
  confirmed: boolean;
  fPort: number;
  data: Buffer;
}

const commandDownTopic = /^application\/([^/]+)\/device\/([0-9a-f]{16})\/command\/down$/;

/**
 * Reads a downlink published to ChirpStack's MQTT integration the way ChirpStack does, for simulated ChirpStacks
 * in tests: the topic names the application and the DevEUI (lower-case hex); the body is a DeviceQueueItem as
 * JSON whose `devEui` must equal the topic's (ChirpStack rejects the command otherwise), with fPort 1..223 and
 * base64 `data`. Throws on anything ChirpStack would reject.
 */
export function parseCommandDown(topic: string, body: Buffer): CommandDown {
  const match = commandDownTopic.exec(topic);
  if (!match) throw new Error(`not a command/down topic: ${topic}`);
  const json = JSON.parse(body.toString('utf8')) as Json;
  const devEui = str(json, 'devEui');
  if (devEui !== match[2])
    throw new Error(`payload devEui ${devEui} does not match topic devEui ${match[2]}`);
  const fPort = num(json, 'fPort');
  if (!Number.isInteger(fPort) || fPort < 1 || fPort > 223) throw new Error(`invalid fPort ${fPort}`);
  return {
    applicationId: match[1]!,
    devEui,
    id: str(json, 'id'),
    confirmed: bool(json, 'confirmed'),
    fPort,
    data: Buffer.from(str(json, 'data'), 'base64'),
  };
}
