import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.js';
import { eventually, randomDevEui } from '../lib/testing/fixtures.js';
import { createIngestMetrics, total } from './metrics.js';
import { PgOrphanSink } from './orphan-store.js';
import { publishEvent, tbms100Payload, uplinkEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';

/** Unknown devices recorded in orphan_devices through the pipeline role, directly and through the bridge. */
let h: IngestHarness;

beforeAll(async () => {
  h = await startIngestHarness('orphans-int');
});
afterAll(async () => {
  await h?.stop();
});

interface OrphanRow {
  application_id: string;
  chirpstack_tenant_id: string | null;
  chirpstack_tenant_name: string | null;
  device_name: string | null;
  first_seen_at: Date;
  last_seen_at: Date;
  uplink_count: string;
  last_f_port: number | null;
  last_rssi: number | null;
  last_payload: Buffer | null;
}
const orphanRow = async (devEui: string) =>
  (
    await h.db.query<OrphanRow>('SELECT * FROM orphan_devices WHERE tenant_id = $1 AND dev_eui = $2', [
      h.tenant.tenantId,
      devEui,
    ])
  ).rows[0];

describe('PgOrphanSink', () => {
  it('upserts one row per DevEUI: first_seen kept, last_seen and count moved forward, ChirpStack names refreshed', async () => {
    const metrics = createIngestMetrics();
    const sink = new PgOrphanSink(h.pool, createLogger('orphans', 'silent'), metrics, { flushMs: 60_000 });
    const devEui = randomDevEui();
    const sighting = (seenAt: number, deviceName: string, fPort: number) => ({
      devEui,
      applicationId: h.applicationId,
      chirpstackTenantId: 'cs-tenant',
      chirpstackTenantName: 'ChirpStack A',
      deviceName,
      eventType: 'up',
      seenAt,
      uplink: { fPort, rssi: -101.4, snr: 6.5, payload: Buffer.from([1, 2, fPort]) },
    });
    const t0 = Date.parse('2024-11-20T10:00:00Z');
    try {
      await sink.note(sighting(t0, 'first-name', 1));
      await sink.note(sighting(t0 + 1_000, 'first-name', 2));
      await sink.flush();
      expect(await orphanRow(devEui)).toMatchObject({
        application_id: h.applicationId,
        chirpstack_tenant_name: 'ChirpStack A',
        device_name: 'first-name',
        first_seen_at: new Date(t0),
        last_seen_at: new Date(t0 + 1_000),
        uplink_count: '2',
        last_f_port: 2,
        last_rssi: -101,
        last_payload: Buffer.from([1, 2, 2]),
      });
      await sink.note({ ...sighting(t0 + 60_000, 'renamed', 3), chirpstackTenantName: 'ChirpStack B' });
      // A join of the same device: seen, but not an uplink.
      await sink.note({
        ...sighting(t0 + 61_000, 'renamed', 3),
        chirpstackTenantName: 'ChirpStack B',
        eventType: 'join',
        uplink: undefined,
      });
      await sink.flush();
      expect(await orphanRow(devEui)).toMatchObject({
        first_seen_at: new Date(t0),
        last_seen_at: new Date(t0 + 61_000),
        uplink_count: '3',
        device_name: 'renamed',
        chirpstack_tenant_name: 'ChirpStack B',
        last_f_port: 3,
      });
      // An application no tenant owns cannot be attributed: counted, not written.
      await sink.note({ ...sighting(t0, 'x', 1), devEui: randomDevEui(), applicationId: randomUUID() });
      await sink.flush();
      const written = await metrics.orphanDevicesWritten.get();
      const byResult = Object.fromEntries(written.values.map((v) => [v.labels['result'], v.value]));
      expect(byResult).toEqual({ written: 2, unattributed: 1 });
    } finally {
      await sink.stop();
    }
  });

  it('is the bridge’s orphan sink: an unknown DevEUI published over MQTT appears in orphan_devices', async () => {
    const devEui = randomDevEui();
    const publisher = await mqtt.connectAsync(h.config.mqtt.url, { clientId: `orphans-pub-${h.run}` });
    try {
      for (const fCnt of [1, 2]) {
        await publishEvent(
          publisher,
          'up',
          uplinkEvent({
            devEui,
            applicationId: h.applicationId,
            fCnt,
            fPort: 102,
            payload: tbms100Payload(true),
          }),
          'json',
        );
      }
    } finally {
      await publisher.endAsync();
    }
    const row = await eventually(
      () => orphanRow(devEui),
      (r) => r?.uplink_count === '2',
    );
    expect(row).toMatchObject({
      device_name: `sensor-${devEui.toLowerCase()}`,
      chirpstack_tenant_name: 'ChirpStack',
      last_f_port: 102,
    });
    expect(await total(h.ingest.metrics.orphanDevicesWritten)).toBeGreaterThanOrEqual(1);
  });
});
