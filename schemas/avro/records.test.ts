import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import type {
  DeadLetterRecord,
  DeviceLocationRecord,
  DeviceStatusRecord,
  DownlinkOutcomeRecord,
  JoinRecord,
  LivenessAlertRecord,
  OccupancyChangeRecord,
  OrphanUplinkRecord,
  ReservationEventRecord,
  UplinkRecord,
} from './records.js';

const avroDir = new URL('./', import.meta.url);
const readSchema = (file: string) =>
  avro.Type.forSchema(JSON.parse(readFileSync(new URL(file, avroDir), 'utf8')));

const envelope = {
  eventId: '5d1c3b52-4d0d-4d2e-9f7e-0b1f1e6f9a11',
  tenantId: '0b6f4a8e-8f3a-4b7c-9d1e-2a3b4c5d6e7f',
  devEui: '70B3D57ED0051A2B',
  time: 1_764_000_000_000,
  receivedAt: 1_764_000_000_120,
  source: 'MQTT',
  applicationId: 'app-1',
} as const;

const uplink: UplinkRecord = {
  ...envelope,
  spaceId: null,
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
  frameType: 'status',
  batteryStatus: 'LOW',
};

const join: JoinRecord = { ...envelope, devAddr: '01fa2b3c' };

const deviceStatus: DeviceStatusRecord = {
  ...envelope,
  margin: 7,
  externalPowerSource: false,
  batteryLevel: 87.5,
};

const deviceLocation: DeviceLocationRecord = {
  ...envelope,
  latitude: 52.370216,
  longitude: 4.895168,
  altitude: 2.5,
  locationSource: 'GEO_RESOLVER_TDOA',
  accuracy: 25.5,
};

const downlinkOutcome: DownlinkOutcomeRecord = {
  ...envelope,
  kind: 'TXACK',
  queueItemId: 'b1f0c2d3-0000-4000-8000-00000000000a',
  acknowledged: null,
  fCntDown: 8,
  downlinkId: 3_000_000_000,
  gatewayId: '0016c001ff10a235',
};

const orphanUplink: OrphanUplinkRecord = {
  ...envelope,
  tenantId: null,
  chirpstackTenantId: '52f14cd4-c6f1-4fbd-8f87-4025e1d49242',
  chirpstackTenantName: 'ChirpStack',
  deviceName: 'sensor-70b3d57ed0051a2b',
  fCnt: 3,
  fPort: 1,
  payload: Buffer.from([0x95]),
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

const occupancyChange: OccupancyChangeRecord = {
  eventId: '7c2f4e8a-1b3d-5e6f-8a9b-0c1d2e3f4a5b',
  tenantId: envelope.tenantId,
  devEui: envelope.devEui,
  spaceId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  time: 1_764_000_000_000,
  confirmedAt: 1_764_000_004_000,
  state: 'occupied',
  previousState: 'free',
  previousDurationMs: 3_600_000,
  uplinkEventId: envelope.eventId,
};

const livenessAlert: LivenessAlertRecord = {
  eventId: '3e9d1c2b-7a6f-5e4d-9c3b-2a1f0e9d8c7b',
  tenantId: envelope.tenantId,
  devEui: envelope.devEui,
  kind: 'device',
  entityId: envelope.devEui,
  state: 'raised',
  time: 1_764_000_090_000,
  lastHeard: 1_764_000_000_000,
  alertId: '3e9d1c2b-7a6f-5e4d-9c3b-2a1f0e9d8c7b',
};

const reservationEvent: ReservationEventRecord = {
  eventId: '1f2e3d4c-5b6a-5978-8695-a4b3c2d1e0f9',
  tenantId: envelope.tenantId,
  devEui: envelope.devEui,
  reservationId: 'c0ffee00-1234-4abc-8def-0123456789ab',
  spaceId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  type: 'no-show',
  status: 'no_show',
  previousStatus: 'confirmed',
  startsAt: 1_764_000_000_000,
  endsAt: 1_764_003_600_000,
  userId: null,
  time: 1_764_000_900_000,
};

/** One sample per .avsc in this folder; a schema without a sample fails the first test. */
const samples: Record<string, object> = {
  'uplink.avsc': uplink,
  'join.avsc': join,
  'device-status.avsc': deviceStatus,
  'device-location.avsc': deviceLocation,
  'downlink-outcome.avsc': downlinkOutcome,
  'orphan-uplink.avsc': orphanUplink,
  'dead-letter.avsc': deadLetter,
  'occupancy-change.avsc': occupancyChange,
  'liveness-alert.avsc': livenessAlert,
  'reservation-event.avsc': reservationEvent,
};

describe('Avro records match their schemas', () => {
  it('has a TypeScript type and a sample for every schema in schemas/avro', () => {
    const files = readdirSync(avroDir).filter((f) => f.endsWith('.avsc'));
    expect(files.sort()).toEqual(Object.keys(samples).sort());
  });

  it.each(Object.entries(samples))(
    '%s: the TypeScript shape has exactly the schema fields and round-trips',
    (file, record) => {
      const type = readSchema(file);
      const fieldNames = (type as avro.types.RecordType).fields.map((f) => f.name).sort();
      expect(Object.keys(record).sort()).toEqual(fieldNames);
      expect(type.isValid(record)).toBe(true);
      expect(type.fromBuffer(type.toBuffer(record))).toEqual(record);
    },
  );

  it.each(Object.keys(samples))(
    '%s: every event carries tenantId, devEui, an event id and its time',
    (file) => {
      const names = (readSchema(file) as avro.types.RecordType).fields.map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining(['eventId', 'tenantId', 'devEui']));
      expect(names.some((n) => n === 'time' || n === 'receivedAt')).toBe(true);
    },
  );
});

describe('uplink schema evolution is BACKWARD compatible', () => {
  const previous = readSchema('history/uplink.1.avsc');
  const current = readSchema('uplink.avsc');

  it('reads a record written with the committed previous version, filling the new fields with defaults', () => {
    const { frameType: _f, batteryStatus: _b, ...written } = uplink;
    const bytes = previous.toBuffer(written);
    const read: unknown = current.fromBuffer(bytes, current.createResolver(previous));
    expect(read).toEqual({ ...written, frameType: null, batteryStatus: null });
  });

  it('adds fields only, each with a default', () => {
    const before = new Set((previous as avro.types.RecordType).fields.map((f) => f.name));
    const added = (current as avro.types.RecordType).fields.filter((f) => !before.has(f.name));
    expect(added.map((f) => f.name)).toEqual(['frameType', 'batteryStatus']);
    for (const field of added) expect(field.defaultValue()).toBeNull();
  });

  it('still encodes a record built without the new fields (they are written as null)', () => {
    const { frameType: _f, batteryStatus: _b, ...v1Shaped } = uplink;
    expect(current.fromBuffer(current.toBuffer(v1Shaped))).toEqual({
      ...v1Shaped,
      frameType: null,
      batteryStatus: null,
    });
  });
});
