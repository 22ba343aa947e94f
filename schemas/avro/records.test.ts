import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import { readAvroSchema } from '../catalog.js';
import type { DeadLetterRecord, UplinkRecord } from './records.js';

const uplink: UplinkRecord = {
  eventId: '5d1c3b52-4d0d-4d2e-9f7e-0b1f1e6f9a11',
  tenantId: '0b6f4a8e-8f3a-4b7c-9d1e-2a3b4c5d6e7f',
  devEui: '70B3D57ED0051A2B',
  spaceId: null,
  time: 1_764_000_000_000,
  receivedAt: 1_764_000_000_120,
  source: 'MQTT',
  applicationId: 'app-1',
  fCnt: 12,
  fPort: 102,
  codec: 'browan-tbms100',
  occupied: true,
  batteryVolts: 3.6,
  temperatureC: 21,
  rssi: -97,
  snr: 7.5,
  gatewayIds: ['0016c001ff10a235'],
  payload: Buffer.from([1, 11, 53]),
};

const deadLetter: DeadLetterRecord = {
  eventId: 'a8f1d7a2-3c1b-4e55-8f2a-9d0c1b2e3f40',
  tenantId: null,
  devEui: null,
  source: 'MQTT',
  errorCode: 'PAYLOAD_INVALID',
  reason: 'not JSON',
  receivedAt: 1_764_000_000_000,
  contentType: 'application/json',
  origin: 'application/1/device/x/event/up',
  original: Buffer.from('{'),
};

describe('Avro records match their schemas', () => {
  it.each([
    ['uplink', uplink],
    ['dead-letter', deadLetter],
  ] as const)('%s: the TypeScript shape has exactly the schema fields and round-trips', (file, record) => {
    const type = avro.Type.forSchema(JSON.parse(readAvroSchema(file)));
    const fieldNames = (type as avro.types.RecordType).fields.map((f) => f.name).sort();
    expect(Object.keys(record).sort()).toEqual(fieldNames);
    expect(type.isValid(record)).toBe(true);
    expect(type.fromBuffer(type.toBuffer(record))).toEqual(record);
  });
});
