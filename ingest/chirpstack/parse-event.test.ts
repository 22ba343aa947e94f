import { describe, expect, it } from 'vitest';
import integrationPb from '@chirpstack/chirpstack-api/integration/integration_pb.js';
import { isPlatformError, type ErrorCode } from '../../lib/errors.js';
import {
  ackEvent,
  defaultApplicationId,
  defaultTenantId,
  encodeEvent,
  joinEvent,
  locationEvent,
  logEvent,
  statusEvent,
  txAckEvent,
  uplinkEvent,
} from '../simulator/chirpstack-sim.js';
import type { ChirpStackEventType, EventEncoding } from './event-types.js';
import { detectEncoding, encodingOfContentType, parseChirpStackEvent } from './parse-event.js';

const devEui = '70b3d57ed0051a2b';
const time = new Date('2026-11-25T10:00:00.250Z');
const dedup = '5D1C3B52-4D0D-4D2E-9F7E-0B1F1E6F9A11';
const device = { devEui, time, deduplicationId: dedup };
const base = {
  devEui: '70B3D57ED0051A2B',
  applicationId: defaultApplicationId,
  applicationName: 'parking',
  tenantId: defaultTenantId,
  tenantName: 'ChirpStack',
  deviceName: `sensor-${devEui}`,
  deviceProfileName: 'TBMS100',
  time: time.getTime(),
};
const dedupId = { eventId: dedup.toLowerCase(), eventIdDerived: false };

const cases: Array<{
  name: string;
  type: ChirpStackEventType;
  event: Record<string, unknown>;
  want: object;
}> = [
  {
    name: 'up with two gateways and a payload',
    type: 'up',
    event: uplinkEvent({
      ...device,
      fCnt: 42,
      fPort: 102,
      payload: Buffer.from('01bb340400dc7801', 'hex'),
      gateways: [
        { gatewayId: 'g1', rssi: -110, snr: -2 },
        { gatewayId: 'g2', rssi: -95, snr: 6.5 },
      ],
    }),
    want: {
      ...base,
      ...dedupId,
      type: 'up',
      devAddr: '01fa2b3c',
      fCnt: 42,
      fPort: 102,
      confirmed: false,
      adr: false,
      dr: 5,
      payload: Buffer.from('01bb340400dc7801', 'hex'),
      object: undefined,
      rxInfo: [
        { gatewayId: 'g1', rssi: -110, snr: -2 },
        { gatewayId: 'g2', rssi: -95, snr: 6.5 },
      ],
      frequency: 868100000,
      regionConfigId: 'eu868',
    },
  },
  {
    name: 'up with every default omitted (fCnt 0, fPort 0, no data, snr 0) and a codec object',
    type: 'up',
    event: uplinkEvent({
      ...device,
      fCnt: 0,
      fPort: 0,
      payload: Buffer.alloc(0),
      gateways: [{ gatewayId: 'g1', rssi: -100, snr: 0 }],
      object: { occupied: true, battery: 3.6 },
    }),
    want: {
      type: 'up',
      fCnt: 0,
      fPort: 0,
      payload: Buffer.alloc(0),
      object: { occupied: true, battery: 3.6 },
      rxInfo: [{ gatewayId: 'g1', rssi: -100, snr: 0 }],
    },
  },
  {
    name: 'join',
    type: 'join',
    event: joinEvent({ ...device, devAddr: '00aabbcc' }),
    want: { ...base, ...dedupId, type: 'join', devAddr: '00aabbcc', regionConfigId: 'eu868' },
  },
  {
    name: 'status with a battery level',
    type: 'status',
    event: statusEvent({ ...device, margin: 7, batteryLevel: 87.5 }),
    want: { ...base, ...dedupId, type: 'status', margin: 7, externalPowerSource: false, batteryLevel: 87.5 },
  },
  {
    name: 'status with battery unavailable and margin 0 omitted',
    type: 'status',
    event: statusEvent({ ...device, margin: 0 }),
    want: { type: 'status', margin: 0, externalPowerSource: false, batteryLevel: null },
  },
  {
    name: 'status on external power',
    type: 'status',
    event: statusEvent({ ...device, margin: -3, externalPowerSource: true }),
    want: { type: 'status', margin: -3, externalPowerSource: true, batteryLevel: null },
  },
  {
    name: 'ack (acknowledged)',
    type: 'ack',
    event: ackEvent({
      ...device,
      queueItemId: 'b1f0c2d3-0000-4000-8000-00000000000a',
      acknowledged: true,
      fCntDown: 7,
    }),
    want: {
      ...base,
      ...dedupId,
      type: 'ack',
      queueItemId: 'b1f0c2d3-0000-4000-8000-00000000000a',
      acknowledged: true,
      fCntDown: 7,
    },
  },
  {
    name: 'ack (not acknowledged, fCntDown 0: both omitted)',
    type: 'ack',
    event: ackEvent({ ...device, acknowledged: false, fCntDown: 0 }),
    want: { type: 'ack', acknowledged: false, fCntDown: 0 },
  },
  {
    name: 'txack (no deduplicationId: derived id)',
    type: 'txack',
    event: txAckEvent({
      devEui,
      time,
      downlinkId: 3_000_000_000,
      queueItemId: 'b1f0c2d3-0000-4000-8000-00000000000a',
      fCntDown: 8,
      gatewayId: '0016c001ff10a235',
    }),
    want: {
      ...base,
      eventIdDerived: true,
      type: 'txack',
      downlinkId: 3_000_000_000,
      queueItemId: 'b1f0c2d3-0000-4000-8000-00000000000a',
      fCntDown: 8,
      gatewayId: '0016c001ff10a235',
    },
  },
  {
    name: 'log (WARNING, UPLINK_F_CNT_RETRANSMISSION, with context)',
    type: 'log',
    event: logEvent({
      devEui,
      time,
      level: 'WARNING',
      code: 'UPLINK_F_CNT_RETRANSMISSION',
      description: 'Uplink was flagged as re-transmission / frame-counter did not increment',
      context: { deduplication_id: dedup.toLowerCase() },
    }),
    want: {
      ...base,
      eventIdDerived: true,
      type: 'log',
      level: 'WARNING',
      code: 'UPLINK_F_CNT_RETRANSMISSION',
      description: 'Uplink was flagged as re-transmission / frame-counter did not increment',
      context: { deduplication_id: dedup.toLowerCase() },
    },
  },
  {
    name: 'log (INFO and UNKNOWN: enum defaults omitted)',
    type: 'log',
    event: logEvent({ devEui, time, level: 'INFO', code: 'UNKNOWN', description: 'hello' }),
    want: { type: 'log', level: 'INFO', code: 'UNKNOWN', description: 'hello', context: {} },
  },
  {
    name: 'location from a geolocation resolver',
    type: 'location',
    event: locationEvent({
      ...device,
      latitude: 52.3676,
      longitude: 4.9041,
      altitude: 2.5,
      source: 'GEO_RESOLVER_TDOA',
      accuracy: 25,
    }),
    want: {
      ...base,
      ...dedupId,
      type: 'location',
      latitude: 52.3676,
      longitude: 4.9041,
      altitude: 2.5,
      source: 'GEO_RESOLVER_TDOA',
      accuracy: 25,
    },
  },
  {
    name: 'location on the equator at sea level (zeros omitted)',
    type: 'location',
    event: locationEvent({ ...device, latitude: 0, longitude: 0, source: 'GPS' }),
    want: { type: 'location', latitude: 0, longitude: 0, altitude: 0, source: 'GPS', accuracy: 0 },
  },
];

const encodings: EventEncoding[] = ['json', 'protobuf'];

describe('parseChirpStackEvent', () => {
  describe.each(encodings)('%s', (encoding) => {
    it.each(cases)('$name', ({ type, event, want }) => {
      const body = encodeEvent(type, event, encoding);
      expect(detectEncoding(body)).toBe(encoding);
      expect(parseChirpStackEvent(type, body, encoding, 0)).toMatchObject(want);
    });
  });

  it.each(cases)('$name: JSON and protobuf give the same envelope, id included', ({ type, event }) => {
    const fromJson = parseChirpStackEvent(type, encodeEvent(type, event, 'json'), 'json', 0);
    const fromProtobuf = parseChirpStackEvent(type, encodeEvent(type, event, 'protobuf'), 'protobuf', 0);
    expect(fromProtobuf).toEqual(fromJson);
    expect(fromJson.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('derives the same txack id on redelivery and a different one for another downlink', () => {
    const spec = { devEui, time, downlinkId: 17, queueItemId: 'q', fCntDown: 1 };
    const id = (e: Record<string, unknown>) =>
      parseChirpStackEvent('txack', encodeEvent('txack', e, 'json'), 'json', 0).eventId;
    expect(id(txAckEvent(spec))).toBe(id(txAckEvent(spec)));
    expect(id(txAckEvent({ ...spec, downlinkId: 18 }))).not.toBe(id(txAckEvent(spec)));
  });

  it('keeps nanosecond time precision for derived ids and uses the receive time when time is omitted', () => {
    const at = (t: string) => ({
      ...logEvent({ devEui, level: 'INFO', code: 'OTAA', description: 'x' }),
      time: t,
    });
    const parse = (e: Record<string, unknown>) =>
      parseChirpStackEvent('log', encodeEvent('log', e, 'json'), 'json', 99);
    const a = parse(at('2026-11-25T10:00:00.250000001Z'));
    const b = parse(at('2026-11-25T10:00:00.250000002Z'));
    const c = parse(at('2026-11-25T11:00:00.250000001+01:00'));
    expect(a.time).toBe(time.getTime());
    expect(a.eventId).not.toBe(b.eventId);
    expect(c.eventId).toBe(a.eventId);
    const noTime = logEvent({ devEui, level: 'INFO', code: 'OTAA', description: 'x' });
    delete noTime['time'];
    expect(parse(noTime).time).toBe(99);
  });

  it('reads enum numbers and numeric strings too (hand-written or older producers)', () => {
    const event = {
      ...logEvent({ devEui, time, level: 'INFO', code: 'UNKNOWN', description: 'd' }),
      level: 2,
      code: 4,
    };
    expect(parseChirpStackEvent('log', Buffer.from(JSON.stringify(event)), 'json', 0)).toMatchObject({
      level: 'ERROR',
      code: 'OTAA',
    });
    const up = {
      ...uplinkEvent({ devEui, fCnt: 0, fPort: 1, payload: Buffer.from([1]) }),
      fCnt: '4294967295',
    };
    expect(parseChirpStackEvent('up', Buffer.from(JSON.stringify(up)), 'json', 0)).toMatchObject({
      fCnt: 4294967295,
    });
  });

  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const upWithout = (key: string) => {
    const e = uplinkEvent({ devEui, fCnt: 1, fPort: 1, payload: Buffer.from([1]) });
    delete e[key];
    return e;
  };
  const protobufWithoutDeviceInfo = () => {
    const m = new integrationPb.JoinEvent();
    m.setDeduplicationId(dedup);
    return Buffer.from(m.serializeBinary());
  };

  it.each<{ name: string; type: string; body: Buffer; encoding: EventEncoding; code: ErrorCode }>([
    {
      name: 'the integration event type',
      type: 'integration',
      body: json({}),
      encoding: 'json',
      code: 'EVENT_UNSUPPORTED',
    },
    {
      name: 'an unknown event type',
      type: 'downlink',
      body: json({}),
      encoding: 'json',
      code: 'EVENT_UNSUPPORTED',
    },
    { name: 'not JSON', type: 'up', body: Buffer.from('{nope'), encoding: 'json', code: 'PAYLOAD_INVALID' },
    { name: 'a JSON array', type: 'up', body: json([1]), encoding: 'json', code: 'PAYLOAD_INVALID' },
    {
      name: 'an up without deduplicationId',
      type: 'up',
      body: json(upWithout('deduplicationId')),
      encoding: 'json',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'an up without deviceInfo',
      type: 'up',
      body: json(upWithout('deviceInfo')),
      encoding: 'json',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'a DevEUI of the wrong length',
      type: 'join',
      body: json({ ...joinEvent({ devEui }), deviceInfo: { devEui: 'abc' } }),
      encoding: 'json',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'a time that is not RFC 3339',
      type: 'join',
      body: json({ ...joinEvent({ devEui }), time: 'yesterday' }),
      encoding: 'json',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'data that is not base64',
      type: 'up',
      body: json({ ...upWithout('data'), data: '***' }),
      encoding: 'json',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'JSON sent as protobuf',
      type: 'up',
      body: json(upWithout('adr')),
      encoding: 'protobuf',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'truncated protobuf',
      type: 'up',
      body: Buffer.from([0x0a, 0x50, 0x01]),
      encoding: 'protobuf',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'protobuf without deviceInfo',
      type: 'join',
      body: protobufWithoutDeviceInfo(),
      encoding: 'protobuf',
      code: 'PAYLOAD_INVALID',
    },
    {
      name: 'an empty protobuf up (no deduplicationId)',
      type: 'up',
      body: Buffer.alloc(0),
      encoding: 'protobuf',
      code: 'PAYLOAD_INVALID',
    },
  ])('refuses $name with $code', ({ type, body, encoding, code }) => {
    let thrown: unknown;
    try {
      parseChirpStackEvent(type, body, encoding, 0);
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, code), String(thrown)).toBe(true);
    expect(isPlatformError(thrown) && thrown.retriable).toBe(false);
  });

  it.each([
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/protobuf', 'protobuf'],
    ['application/x-protobuf', 'protobuf'],
    ['text/plain', undefined],
    [undefined, undefined],
  ] as const)('content type %s means %s', (contentType, encoding) => {
    expect(encodingOfContentType(contentType)).toBe(encoding);
  });
});
