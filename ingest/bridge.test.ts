import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.js';
import type { AvroSerde } from '../lib/kafka/avro.js';
import type { KeyedRecord } from '../lib/kafka/sink.js';
import { createBridge, type BridgeSerdes, type RawEvent } from './bridge.js';
import type { ChirpStackEventType } from './chirpstack/event-types.js';
import { Deduplicator } from './dedup.js';
import type { DeviceAssignment } from './device-directory.js';
import { total, createIngestMetrics } from './metrics.js';
import { MemoryOrphanSink } from './orphans.js';
import {
  ackEvent,
  encodeEvent,
  joinEvent,
  locationEvent,
  logEvent,
  statusEvent,
  tbms100Payload,
  txAckEvent,
  uplinkEvent,
} from './simulator/chirpstack-sim.js';

const known = '70B3D57ED0050001';
const display = '70B3D57ED00D1501';
const inactive = '70B3D57ED0050002';
const decommissioned = '70B3D57ED0050003';
const topics = {
  uplinks: 'uplinks',
  joins: 'joins',
  deviceStatus: 'status',
  deviceLocations: 'locations',
  downlinkOutcomes: 'outcomes',
  orphanUplinks: 'orphans',
  deadLetter: 'dlq',
};
const jsonBytes = (v: unknown) =>
  Buffer.from(JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? 'bytes' : x)));
const jsonSerde = <T>(): AvroSerde<T> => ({
  schemaId: 1,
  encode: async (v) => jsonBytes(v),
  encodeSync: jsonBytes,
});

const sensor = { tenantId: 'tenant-1', kind: 'sensor', codec: 'browan-tbms100' } as const;
const devices: Record<string, DeviceAssignment> = {
  [known]: { ...sensor, spaceId: 'space-1', status: 'active' },
  [display]: { tenantId: 'tenant-1', spaceId: 'space-1', kind: 'display', codec: null, status: 'active' },
  // As DeviceDirectory resolves them (assignmentOf): an inactive sensor keeps its tenant, not its space.
  [inactive]: { ...sensor, spaceId: null, status: 'inactive' },
  [decommissioned]: { ...sensor, spaceId: null, status: 'decommissioned' },
};

function setup() {
  const sent: Array<{ topic: string; record: KeyedRecord }> = [];
  const metrics = createIngestMetrics();
  const orphans = new MemoryOrphanSink();
  const serdes: BridgeSerdes = {
    uplink: jsonSerde(),
    join: jsonSerde(),
    deviceStatus: jsonSerde(),
    deviceLocation: jsonSerde(),
    downlinkOutcome: jsonSerde(),
    orphanUplink: jsonSerde(),
    deadLetter: jsonSerde(),
  };
  const bridge = createBridge({
    resolveDevice: async (devEui) => devices[devEui] ?? null,
    sink: { send: async (topic, records) => void records.forEach((record) => sent.push({ topic, record })) },
    serdes,
    topics,
    dedup: new Deduplicator({ maxEntries: 1000, ttlMs: 60_000 }),
    orphans,
    metrics,
    logger: createLogger('test', 'silent'),
  });
  const raw = (eventType: string, body: Buffer): RawEvent => ({
    source: 'MQTT',
    eventType,
    origin: 'test',
    body,
    receivedAt: Date.now(),
  });
  const decoded = (i: number) => JSON.parse(sent[i]!.record.value.toString()) as Record<string, unknown>;
  return { bridge, sent, metrics, orphans, raw, decoded };
}

const up = (devEui: string, fCnt = 1, deduplicationId = randomUUID()) =>
  uplinkEvent({ devEui, fCnt, fPort: 102, payload: tbms100Payload(true), deduplicationId });

describe('bridge routing', () => {
  const cases: Array<{
    name: string;
    type: ChirpStackEventType;
    event: Record<string, unknown>;
    topic: string;
    check: Record<string, unknown>;
  }> = [
    {
      name: 'up of a known device -> uplinks, decoded',
      type: 'up',
      event: up(known),
      topic: 'uplinks',
      check: { tenantId: 'tenant-1', occupied: true, codec: 'browan-tbms100' },
    },
    {
      name: 'up of an unknown device -> orphan uplinks',
      type: 'up',
      event: up('0000000000000BAD'),
      topic: 'orphans',
      check: { tenantId: null, devEui: '0000000000000BAD' },
    },
    {
      name: 'join -> joins',
      type: 'join',
      event: joinEvent({ devEui: known, devAddr: '01020304' }),
      topic: 'joins',
      check: { devAddr: '01020304' },
    },
    {
      name: 'status -> device status',
      type: 'status',
      event: statusEvent({ devEui: known, margin: 7, batteryLevel: 80 }),
      topic: 'status',
      check: { margin: 7, batteryLevel: 80 },
    },
    {
      name: 'ack -> downlink outcomes',
      type: 'ack',
      event: ackEvent({ devEui: known, acknowledged: true, fCntDown: 3 }),
      topic: 'outcomes',
      check: { kind: 'ACK', acknowledged: true },
    },
    {
      name: 'txack -> downlink outcomes',
      type: 'txack',
      event: txAckEvent({ devEui: known, downlinkId: 9, fCntDown: 3 }),
      topic: 'outcomes',
      check: { kind: 'TXACK', downlinkId: 9 },
    },
    {
      name: 'location -> device locations',
      type: 'location',
      event: locationEvent({
        devEui: known,
        latitude: 52.5,
        longitude: 4.25,
        altitude: 3,
        source: 'GEO_RESOLVER_TDOA',
        accuracy: 12.5,
      }),
      topic: 'locations',
      check: {
        tenantId: 'tenant-1',
        devEui: known,
        latitude: 52.5,
        longitude: 4.25,
        altitude: 3,
        locationSource: 'GEO_RESOLVER_TDOA',
        accuracy: 12.5,
      },
    },
    {
      name: 'location of an unknown device -> dead letter',
      type: 'location',
      event: locationEvent({ devEui: '0000000000000BAD', latitude: 1, longitude: 2, source: 'GPS' }),
      topic: 'dlq',
      check: { errorCode: 'DEVICE_UNKNOWN', devEui: '0000000000000BAD', tenantId: null },
    },
    {
      name: 'up of an inactive sensor -> uplinks with its tenant, not its space',
      type: 'up',
      event: up(inactive),
      topic: 'uplinks',
      check: { tenantId: 'tenant-1', spaceId: null, occupied: true },
    },
    {
      name: 'status of an inactive sensor -> device status',
      type: 'status',
      event: statusEvent({ devEui: inactive, margin: 5, batteryLevel: 40 }),
      topic: 'status',
      check: { tenantId: 'tenant-1', batteryLevel: 40 },
    },
    {
      name: 'up of a decommissioned sensor -> dead letter DEVICE_DECOMMISSIONED with its former tenant',
      type: 'up',
      event: up(decommissioned),
      topic: 'dlq',
      check: { errorCode: 'DEVICE_DECOMMISSIONED', tenantId: 'tenant-1', devEui: decommissioned },
    },
    {
      name: 'join of a decommissioned sensor -> dead letter DEVICE_DECOMMISSIONED',
      type: 'join',
      event: joinEvent({ devEui: decommissioned }),
      topic: 'dlq',
      check: { errorCode: 'DEVICE_DECOMMISSIONED', tenantId: 'tenant-1' },
    },
    {
      name: "a display's txack -> downlink outcomes, with its tenant",
      type: 'txack',
      event: txAckEvent({ devEui: display, downlinkId: 11, fCntDown: 4 }),
      topic: 'outcomes',
      check: { kind: 'TXACK', downlinkId: 11, tenantId: 'tenant-1' },
    },
    {
      name: "a display's ack -> downlink outcomes, with its tenant",
      type: 'ack',
      event: ackEvent({ devEui: display, acknowledged: true, fCntDown: 4 }),
      topic: 'outcomes',
      check: { kind: 'ACK', acknowledged: true, tenantId: 'tenant-1' },
    },
    {
      name: 'an uplink from a display -> dead letter (displays only receive commands)',
      type: 'up',
      event: up(display),
      topic: 'dlq',
      check: { errorCode: 'EVENT_UNSUPPORTED', devEui: display },
    },
    {
      name: 'join of an unknown device -> dead letter',
      type: 'join',
      event: joinEvent({ devEui: '0000000000000BAD' }),
      topic: 'dlq',
      check: { errorCode: 'DEVICE_UNKNOWN' },
    },
  ];
  for (const c of cases) {
    for (const encoding of ['json', 'protobuf'] as const) {
      it(`${c.name} (${encoding})`, async () => {
        const s = setup();
        await s.bridge.handle(s.raw(c.type, encodeEvent(c.type, c.event, encoding)));
        expect(s.sent).toHaveLength(1);
        expect(s.sent[0]!.topic).toBe(c.topic);
        expect(s.decoded(0)).toMatchObject(c.check);
      });
    }
  }

  it('counts log events by level and code without publishing them', async () => {
    const s = setup();
    const event = logEvent({ devEui: known, level: 'ERROR', code: 'UPLINK_CODEC', description: 'boom' });
    const result = await s.bridge.handle(s.raw('log', encodeEvent('log', event, 'json')));
    expect(result.outcome).toBe('ignored');
    expect(s.sent).toHaveLength(0);
    expect(await total(s.metrics.chirpstackLog)).toBe(1);
  });

  it('dead-letters malformed input with its code and the original bytes', async () => {
    const s = setup();
    const result = await s.bridge.handle(s.raw('up', Buffer.from('{"nope":')), {
      devEuiHint: 'abcdef0123456789',
    });
    expect(result).toMatchObject({ outcome: 'dead-lettered', error: { code: 'PAYLOAD_INVALID' } });
    expect(s.decoded(0)).toMatchObject({ devEui: 'ABCDEF0123456789', errorCode: 'PAYLOAD_INVALID' });
  });

  it('publishes one record for copies with the same deduplicationId or the same fCnt, and counts the rest', async () => {
    const s = setup();
    const id = randomUUID();
    const copies = [up(known, 5, id), up(known, 5, id), up(known, 5)];
    const results = await Promise.all(
      copies.map((e) => s.bridge.handle(s.raw('up', encodeEvent('up', e, 'json')))),
    );
    expect(results.map((r) => r.outcome).sort()).toEqual(['deduplicated', 'deduplicated', 'published']);
    expect(s.sent).toHaveLength(1);
    expect(await total(s.metrics.deduplicated)).toBe(2);
    expect(await total(s.metrics.received)).toBe(3);
  });

  it('hands a device’s events to the sink in call order', async () => {
    const s = setup();
    const events = Array.from({ length: 20 }, (_, i) => up(known, i + 1));
    await Promise.all(events.map((e) => s.bridge.handle(s.raw('up', encodeEvent('up', e, 'json')))));
    expect(s.sent.map((_, i) => s.decoded(i)['fCnt'])).toEqual(events.map((_, i) => i + 1));
  });

  it('records an unknown device as an orphan for a location event too, but never a decommissioned one', async () => {
    const s = setup();
    const where = { latitude: 1, longitude: 2, source: 'GPS' } as const;
    await s.bridge.handle(
      s.raw(
        'location',
        encodeEvent('location', locationEvent({ devEui: '0000000000000BAD', ...where }), 'json'),
      ),
    );
    await s.bridge.handle(
      s.raw('location', encodeEvent('location', locationEvent({ devEui: decommissioned, ...where }), 'json')),
    );
    expect(s.orphans.get('0000000000000BAD')).toMatchObject({ count: 1, eventType: 'location' });
    expect(s.orphans.get(decommissioned)).toBeUndefined();
    expect(s.orphans.size).toBe(1);
  });

  it('keeps the original bytes of a decommissioned device’s event and counts it by code and tenant', async () => {
    const s = setup();
    const body = encodeEvent('up', up(decommissioned), 'protobuf');
    const result = await s.bridge.handle(s.raw('up', body));
    expect(result).toMatchObject({
      outcome: 'dead-lettered',
      tenantId: 'tenant-1',
      error: { code: 'DEVICE_DECOMMISSIONED' },
    });
    const value = JSON.parse(s.sent[0]!.record.value.toString()) as Record<string, unknown>;
    expect(value['original']).toEqual({ type: 'Buffer', data: [...body] });
    expect(s.sent[0]!.record.key).toBe(decommissioned);
    const dead = await s.metrics.deadLettered.get();
    expect(dead.values).toEqual([
      { labels: { source: 'MQTT', tenant: 'tenant-1', code: 'DEVICE_DECOMMISSIONED' }, value: 1 },
    ]);
  });

  it('records an unknown device as an orphan after its uplink is durable', async () => {
    const s = setup();
    await s.bridge.handle(s.raw('up', encodeEvent('up', up('0000000000000BAD'), 'json')));
    expect(s.orphans.get('0000000000000BAD')).toMatchObject({ count: 1, eventType: 'up' });
  });
});
