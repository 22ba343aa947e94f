import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, eventually, randomDevEui } from '../lib/testing/fixtures.js';
import { total } from './metrics.js';
import { tbms100Payload, uplinkEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';
import { signBody } from './webhook-signature.js';

/**
 * The legacy v5 webhook POST /api/v1/uplink over real HTTP, signatures checked against webhook_secrets (the
 * migration identity rotates them as the API would), records read back from Kafka with a fresh registry client.
 */
let h: IngestHarness;
let secret: Buffer;

beforeAll(async () => {
  h = await startIngestHarness('webhook-int');
  secret = await h.rotateWebhookSecret();
});
afterAll(async () => {
  await h?.stop();
});

const uplink = (fCnt: number, devEui = h.tenant.devEui, applicationId = h.applicationId) =>
  JSON.stringify(
    uplinkEvent({
      devEui,
      applicationId,
      fCnt,
      fPort: 102,
      payload: tbms100Payload(true),
      deduplicationId: randomUUID(),
    }),
  );
const idOf = (body: string) => String((JSON.parse(body) as { deduplicationId: string }).deduplicationId);
const post = (body: string, signature?: string) =>
  fetch(`http://127.0.0.1:${h.ingest.httpPort}/api/v1/uplink`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      ...(signature === undefined ? {} : { 'X-Chirpstack-Signature': signature }),
    },
  });

describe('v5 webhook POST /api/v1/uplink', () => {
  it('answers 202 for a signed uplink once it is durable, published with source WEBHOOK_V5', async () => {
    const body = uplink(1);
    const response = await post(body, signBody(body, secret));
    expect(response.status).toBe(202);
    const [record] = await eventually(
      async () => h.recordsOn(h.topics.uplinks, [idOf(body)]),
      (r) => r.length === 1,
    );
    expect(record?.record).toMatchObject({
      source: 'WEBHOOK_V5',
      tenantId: h.tenant.tenantId,
      spaceId: h.tenant.spaceId,
      fCnt: 1,
      occupied: true,
    });
  });

  it('refuses a missing, malformed, wrong or other-tenant signature with 401 problem+json; nothing reaches the bridge', async () => {
    const other = await createTestTenant();
    const otherSecret = await h.rotateWebhookSecret(other.tenantId);
    const bodies = Array.from({ length: 6 }, (_, i) => uplink(100 + i));
    const before = await h.counts();
    const refusedBefore = await total(h.ingest.metrics.webhookRefused);
    const answers = [
      await post(bodies[0]!),
      await post(bodies[1]!, 'deadbeef'),
      await post(bodies[2]!, signBody(bodies[2]!, randomBytes(32))),
      // Signed by another tenant with its own valid secret: the device is not theirs.
      await post(bodies[3]!, signBody(bodies[3]!, otherSecret)),
      // A valid signature of a different body (the body was tampered with).
      await post(bodies[4]!, signBody(bodies[5]!, secret)),
      // An event naming no device or application of any tenant cannot be attributed.
      await post(uplink(106, randomDevEui(), randomUUID()), signBody(bodies[5]!, secret)),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await answer.json()) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 401, title: 'UNAUTHENTICATED', code: 'UNAUTHENTICATED' });
      expect(typeof problem['type']).toBe('string');
      expect(typeof problem['detail']).toBe('string');
      expect(typeof problem['request_id']).toBe('string');
    }
    expect((await total(h.ingest.metrics.webhookRefused)) - refusedBefore).toBe(answers.length);
    expect((await h.counts()).received - before.received).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(h.seen.filter((s) => bodies.map(idOf).includes(String(s.record['eventId'])))).toHaveLength(0);
  });

  it('after a rotation accepts the current and the previous secret; a third rotation drops the first one', async () => {
    const first = await h.rotateWebhookSecret();
    const accepted = async (key: Buffer) => {
      const body = uplink(200 + Math.floor(Math.random() * 10_000));
      return (await post(body, signBody(body, key))).status;
    };
    // Notifications arrive a few ms after the commit: a new secret is usable once its NOTIFY reached the bridge.
    await eventually(
      async () => accepted(first),
      (status) => status === 202,
      { timeoutMs: 5_000 },
    );
    const second = await h.rotateWebhookSecret();
    // The cache is dropped by the NOTIFY of the rotation (no restart, no cache expiry).
    await eventually(
      async () => accepted(second),
      (status) => status === 202,
      { timeoutMs: 5_000 },
    );
    expect(await accepted(first)).toBe(202);
    const third = await h.rotateWebhookSecret();
    await eventually(
      async () => accepted(third),
      (status) => status === 202,
      { timeoutMs: 5_000 },
    );
    expect(await accepted(second)).toBe(202);
    expect(await accepted(first)).toBe(401);
  });

  it('attributes an unregistered device by its ChirpStack application; its uplink goes to the orphan topic', async () => {
    const current = await h.rotateWebhookSecret();
    await eventually(
      async () => h.ingest.secrets.valid(h.tenant.tenantId),
      (s) => s.some((k) => k.equals(current)),
    );
    const body = uplink(1, randomDevEui());
    expect((await post(body, signBody(body, current))).status).toBe(202);
    const [orphan] = await eventually(
      async () => h.recordsOn(h.topics.orphanUplinks, [idOf(body)]),
      (r) => r.length === 1,
    );
    expect(orphan?.record).toMatchObject({ source: 'WEBHOOK_V5', tenantId: null });
  });

  it('dead-letters a signed but invalid event and answers 400 problem+json', async () => {
    const current = (await h.ingest.secrets.valid(h.tenant.tenantId))[0]!;
    const body = JSON.stringify({ ...JSON.parse(uplink(300)), time: 'yesterday' });
    const response = await post(body, signBody(body, current));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'PAYLOAD_INVALID', deadLettered: true });
  });
});
