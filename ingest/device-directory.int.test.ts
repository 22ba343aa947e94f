import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, eventually, randomDevEui } from '../lib/testing/fixtures.js';
import { tbms100Payload, txAckEvent, uplinkEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';

/**
 * Assignment changes reach a running bridge through LISTEN/NOTIFY (trigger on sensor_devices): the migration
 * identity changes rows the way the API would, and the next uplink is routed by the new assignment.
 */
let h: IngestHarness;

beforeAll(async () => {
  h = await startIngestHarness('directory-int');
});
afterAll(async () => {
  await h?.stop();
});

let fCnt = 0;
async function postUplink(devEui: string) {
  const event = uplinkEvent({
    devEui,
    applicationId: h.applicationId,
    fCnt: ++fCnt,
    fPort: 102,
    payload: tbms100Payload(true),
    deduplicationId: randomUUID(),
  });
  const response = await fetch(`http://127.0.0.1:${h.ingest.httpPort}/chirpstack/events?event=up`, {
    method: 'POST',
    body: JSON.stringify(event),
    headers: { 'content-type': 'application/json' },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { outcome: string; eventId: string };
}
const recordOf = async (topic: string, eventId: string) =>
  (
    await eventually(
      async () => h.recordsOn(topic, [eventId]),
      (r) => r.length === 1,
    )
  )[0]!.record;

describe('device cache invalidation', () => {
  it('a re-assignment (new space, then another tenant) takes effect on a running bridge without restart', async () => {
    const devEui = h.tenant.devEui;
    const first = await postUplink(devEui);
    expect(await recordOf(h.topics.uplinks, first.eventId)).toMatchObject({ spaceId: h.tenant.spaceId });
    expect(h.ingest.directory.size).toBeGreaterThan(0);

    const space = await h.db.query<{ id: string }>(
      "INSERT INTO spaces (tenant_id, code, name) VALUES ($1, 'B-02', 'Space B-02') RETURNING id",
      [h.tenant.tenantId],
    );
    const newSpace = space.rows[0]!.id;
    await h.db.query('UPDATE sensor_devices SET space_id = $1 WHERE dev_eui = $2', [newSpace, devEui]);
    // The cached assignment is dropped by the notification, not by a timeout (the cache has none).
    await eventually(
      () => h.ingest.directory.resolve(devEui),
      (a) => a?.spaceId === newSpace,
      { timeoutMs: 5_000 },
    );
    const second = await postUplink(devEui);
    expect(await recordOf(h.topics.uplinks, second.eventId)).toMatchObject({
      tenantId: h.tenant.tenantId,
      spaceId: newSpace,
    });

    const other = await createTestTenant();
    await h.db.query('BEGIN');
    await h.db.query('DELETE FROM sensor_devices WHERE dev_eui = $1', [devEui]);
    await h.db.query(
      'INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) SELECT tenant_id, $2, NULL, codec FROM sensor_devices WHERE dev_eui = $1',
      [other.devEui, devEui],
    );
    await h.db.query('COMMIT');
    await eventually(
      () => h.ingest.directory.resolve(devEui),
      (a) => a?.tenantId === other.tenantId,
      { timeoutMs: 5_000 },
    );
    const third = await postUplink(devEui);
    expect(await recordOf(h.topics.uplinks, third.eventId)).toMatchObject({
      tenantId: other.tenantId,
      spaceId: null,
    });
  });

  it('an unknown DevEUI (cached as unknown) is published as soon as it is registered', async () => {
    const devEui = randomDevEui();
    expect((await postUplink(devEui)).outcome).toBe('orphaned');
    expect((await postUplink(devEui)).outcome).toBe('orphaned'); // served from the cache
    await h.db.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'browan-tbms100')",
      [h.tenant.tenantId, devEui],
    );
    await eventually(
      () => h.ingest.directory.resolve(devEui),
      (a) => a?.tenantId === h.tenant.tenantId,
      { timeoutMs: 5_000 },
    );
    const published = await postUplink(devEui);
    expect(published.outcome).toBe('published');
    expect(await recordOf(h.topics.uplinks, published.eventId)).toMatchObject({
      tenantId: h.tenant.tenantId,
    });
  });

  it("a display's txack reaches the downlink outcomes with its tenant, and registering it takes effect at once", async () => {
    const devEui = randomDevEui();
    const txack = async () => {
      const event = txAckEvent({ devEui, applicationId: h.applicationId, downlinkId: 7, fCntDown: 1 });
      const response = await fetch(`http://127.0.0.1:${h.ingest.httpPort}/chirpstack/events?event=txack`, {
        method: 'POST',
        body: JSON.stringify(event),
        headers: { 'content-type': 'application/json' },
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    // Unknown device: dead-lettered with DEVICE_UNKNOWN (bytes kept), and the integration is told so.
    const refused = await txack();
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('DEVICE_UNKNOWN');
    await h.db.query('INSERT INTO display_devices (tenant_id, dev_eui, space_id) VALUES ($1, $2, $3)', [
      h.tenant.tenantId,
      devEui,
      h.tenant.spaceId,
    ]);
    await eventually(
      () => h.ingest.directory.resolve(devEui),
      (a) => a?.kind === 'display' && a.tenantId === h.tenant.tenantId,
      { timeoutMs: 5_000 },
    );
    const accepted = await txack();
    expect(accepted.status).toBe(200);
    expect(accepted.body['outcome']).toBe('published');
    expect(await recordOf(h.topics.downlinkOutcomes, String(accepted.body['eventId']))).toMatchObject({
      tenantId: h.tenant.tenantId,
      devEui,
      kind: 'TXACK',
    });
  });
});

describe('device status', () => {
  async function send(devEui: string, type: 'up' | 'txack') {
    const event =
      type === 'up'
        ? uplinkEvent({
            devEui,
            applicationId: h.applicationId,
            fCnt: ++fCnt,
            fPort: 102,
            payload: tbms100Payload(true),
            deduplicationId: randomUUID(),
          })
        : txAckEvent({ devEui, applicationId: h.applicationId, downlinkId: ++fCnt, fCntDown: 1 });
    const body = JSON.stringify(event);
    const response = await fetch(`http://127.0.0.1:${h.ingest.httpPort}/chirpstack/events?event=${type}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, sent: body };
  }
  const statusOf = async (devEui: string, status: string) =>
    eventually(
      () => h.ingest.directory.resolve(devEui),
      (a) => a?.status === status,
      { timeoutMs: 5_000 },
    );
  const deadLetterOf = async (devEui: string) =>
    (
      await eventually(
        async () => h.seen.filter((s) => s.topic === h.topics.deadLetter && s.record['devEui'] === devEui),
        (r) => r.length === 1,
      )
    )[0]!;

  it('inactive: published with the tenant, not the space; decommissioned: a DEVICE_DECOMMISSIONED dead letter with the bytes; reactivated: published again', async () => {
    const devEui = randomDevEui();
    const space = await h.db.query<{ id: string }>(
      "INSERT INTO spaces (tenant_id, code, name) VALUES ($1, 'S-01', 'Space S-01') RETURNING id",
      [h.tenant.tenantId],
    );
    const spaceId = space.rows[0]!.id;
    await h.db.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
      [h.tenant.tenantId, devEui, spaceId],
    );
    await statusOf(devEui, 'active');
    const active = await send(devEui, 'up');
    expect(active.body['outcome']).toBe('published');
    expect(await recordOf(h.topics.uplinks, String(active.body['eventId']))).toMatchObject({ spaceId });

    await h.db.query("UPDATE sensor_devices SET status = 'inactive' WHERE dev_eui = $1", [devEui]);
    await statusOf(devEui, 'inactive');
    const inactive = await send(devEui, 'up');
    expect(inactive.body['outcome']).toBe('published');
    expect(await recordOf(h.topics.uplinks, String(inactive.body['eventId']))).toMatchObject({
      tenantId: h.tenant.tenantId,
      devEui,
      spaceId: null,
    });

    const before = await h.counts();
    // As the API archives a device (api/services/devices.ts archiveDevice).
    await h.db.query(
      `UPDATE sensor_devices SET status = 'decommissioned', space_id = NULL, archived_at = now()
        WHERE dev_eui = $1`,
      [devEui],
    );
    await statusOf(devEui, 'decommissioned');
    const refused = await send(devEui, 'up');
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'DEVICE_DECOMMISSIONED', deadLettered: true });
    const dead = await deadLetterOf(devEui);
    expect(dead.key).toBe(devEui);
    expect(dead.record).toMatchObject({
      errorCode: 'DEVICE_DECOMMISSIONED',
      tenantId: h.tenant.tenantId,
      source: 'HTTP',
      contentType: 'application/json',
    });
    expect(Buffer.from(dead.record['original'] as Buffer).toString()).toBe(refused.sent);
    const after = await h.counts();
    expect(after.deadLettered - before.deadLettered).toBe(1);
    expect(after.published - before.published).toBe(0);

    await h.db.query("UPDATE sensor_devices SET status = 'active', archived_at = NULL WHERE dev_eui = $1", [
      devEui,
    ]);
    await statusOf(devEui, 'active');
    expect((await send(devEui, 'up')).body['outcome']).toBe('published');
  });

  it("a display's status change reaches the cache too: decommissioned, its txack is refused", async () => {
    const devEui = randomDevEui();
    await h.db.query('INSERT INTO display_devices (tenant_id, dev_eui) VALUES ($1, $2)', [
      h.tenant.tenantId,
      devEui,
    ]);
    await statusOf(devEui, 'active');
    expect((await send(devEui, 'txack')).body['outcome']).toBe('published');
    await h.db.query("UPDATE display_devices SET status = 'decommissioned' WHERE dev_eui = $1", [devEui]);
    await statusOf(devEui, 'decommissioned');
    const refused = await send(devEui, 'txack');
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'DEVICE_DECOMMISSIONED' });
    expect((await deadLetterOf(devEui)).record).toMatchObject({ tenantId: h.tenant.tenantId });
  });
});
