import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, randomDevEui } from '../lib/testing/fixtures.js';
import type { EventEncoding } from './chirpstack/event-types.js';
import { locationEvent, publishEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';

/**
 * ChirpStack location events over real MQTT, JSON and protobuf with ChirpStack's omitted defaults, read back
 * from parking.device-locations.v1 as Avro with a fresh Schema Registry client; unknown and decommissioned
 * devices end on the dead-letter topic, as for every other event type.
 */
let h: IngestHarness;
let publisher: MqttClient;

beforeAll(async () => {
  h = await startIngestHarness('location-int');
  publisher = await mqtt.connectAsync(h.config.mqtt.url, { clientId: `location-int-pub-${h.run}` });
});
afterAll(async () => {
  await publisher?.endAsync();
  await h?.stop();
});

const location = (devEui: string, fields: Partial<Parameters<typeof locationEvent>[0]> = {}) =>
  locationEvent({
    devEui,
    applicationId: h.applicationId,
    deduplicationId: randomUUID(),
    time: new Date('2026-11-25T10:00:00.000Z'),
    latitude: 52.370216,
    longitude: 4.895168,
    source: 'GPS',
    ...fields,
  });
const idOf = (event: Record<string, unknown>) => String(event['deduplicationId']);

describe('location events', () => {
  it.each<[EventEncoding]>([['json'], ['protobuf']])(
    'a known device’s location (%s) is published keyed by DevEUI on the device-locations topic',
    async (encoding) => {
      const event = location(h.tenant.devEui, {
        altitude: 12.25,
        source: 'GEO_RESOLVER_TDOA',
        accuracy: 37.5,
      });
      await publishEvent(publisher, 'location', event, encoding);
      const [record] = await eventually(
        async () => h.recordsOn(h.topics.deviceLocations, [idOf(event)]),
        (r) => r.length === 1,
      );
      expect(record!.key).toBe(h.tenant.devEui);
      expect(record!.record).toEqual({
        eventId: idOf(event),
        tenantId: h.tenant.tenantId,
        devEui: h.tenant.devEui,
        time: Date.parse('2026-11-25T10:00:00.000Z'),
        receivedAt: expect.any(Number),
        source: 'MQTT',
        applicationId: h.applicationId,
        latitude: 52.370216,
        longitude: 4.895168,
        altitude: 12.25,
        locationSource: 'GEO_RESOLVER_TDOA',
        accuracy: 37.5,
      });
    },
  );

  it('zeros ChirpStack omitted (equator, sea level, no accuracy, unknown source) read back as 0 and UNKNOWN', async () => {
    const event = location(h.tenant.devEui, { latitude: 0, longitude: 0, source: 'UNKNOWN' });
    expect(event['location']).toEqual({});
    await publishEvent(publisher, 'location', event, 'protobuf');
    const [record] = await eventually(
      async () => h.recordsOn(h.topics.deviceLocations, [idOf(event)]),
      (r) => r.length === 1,
    );
    expect(record!.record).toMatchObject({
      latitude: 0,
      longitude: 0,
      altitude: 0,
      accuracy: 0,
      locationSource: 'UNKNOWN',
    });
  });

  it('an unknown device’s location is a DEVICE_UNKNOWN dead letter with its bytes, and the device an orphan; copies are counted once', async () => {
    const devEui = randomDevEui();
    const event = location(devEui);
    const before = await h.counts();
    await publishEvent(publisher, 'location', event, 'json');
    await publishEvent(publisher, 'location', event, 'protobuf');
    const after = await eventually(
      h.counts,
      (c) =>
        c.received - before.received === 2 &&
        c.deadLettered + c.deduplicated - before.deadLettered - before.deduplicated === 2,
    );
    expect(after.deadLettered - before.deadLettered).toBe(1);
    expect(after.deduplicated - before.deduplicated).toBe(1);
    expect(after.published - before.published).toBe(0);
    const [dead] = await eventually(
      async () => h.recordsOn(h.topics.deadLetter, [idOf(event)]),
      (r) => r.length === 1,
    );
    expect(dead!.key).toBe(devEui);
    expect(dead!.record).toMatchObject({ errorCode: 'DEVICE_UNKNOWN', devEui, tenantId: null });
    expect(JSON.parse(Buffer.from(dead!.record['original'] as Buffer).toString())).toEqual(event);
    const orphan = await eventually(
      () =>
        h.db.query('SELECT tenant_id, dev_eui, uplink_count FROM orphan_devices WHERE dev_eui = $1', [
          devEui,
        ]),
      (r) => r.rowCount === 1,
    );
    expect(orphan.rows[0]).toEqual({ tenant_id: h.tenant.tenantId, dev_eui: devEui, uplink_count: '0' });
  });
});
