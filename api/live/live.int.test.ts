import { randomBytes, randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { hashApiKey } from '../../lib/api-key.js';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema, type AvroSerde } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import type { Service } from '../../lib/lifecycle.js';
import { createLogger } from '../../lib/logger.js';
import { createTestTenant, eventually, type TestTenant } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import type { OccupancyChangeRecord } from '../../schemas/avro/records.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import { createTokenService } from '../auth/tokens.js';
import { start } from '../service.js';
import { fromOccupancyChange, type LiveEvent, type ServerMessage } from './envelope.js';
import type { LiveServer } from './server.js';

/**
 * Live updates end to end: the real API (two instances, each its own consumer group) over real sockets, a per-run
 * change topic on the mock broker with Avro records encoded through the registry as the outbox writes them, and
 * matching occupancy_changes rows in PostgreSQL for the replay path.
 */
const config = loadConfig();
const logger = createLogger('live-test', 'silent');
const run = randomUUID().slice(0, 8);
const topic = `test-live-${run}`;
const tokens = createTokenService(config.apiAuth);
const liveOptions = {
  ...config.apiLive,
  replayMaxEvents: 5,
  maxBufferedBytes: 32 * 1024,
  heartbeatMs: 60_000,
  closeGraceMs: 10_000,
};

let su: pg.Client;
let pool: Pool;
let producer: Producer;
let serde: AvroSerde<OccupancyChangeRecord>;
let a: TestTenant;
let b: TestTenant;
const instances: Array<Service & { port: number; live?: LiveServer }> = [];
const sockets: WebSocket[] = [];
let clock = Date.now() - 600_000;

async function startInstance(n: number) {
  const instance = await start({
    config: { host: '127.0.0.1', port: 0, consoleDist: '' },
    auth: config.apiAuth,
    rateLimit: config.apiRateLimit,
    apiPool: pool,
    logger,
    live: {
      kafka: createKafka(config.kafka, logger, `live-test-${run}-${n}`),
      registry: createSchemaRegistry(config.schemaRegistry),
      topic,
      groupId: `test-live-${run}-${n}`,
      options: liveOptions,
    },
  });
  instances.push(instance);
  return instance;
}

/** A connected client that records every message and its close code. */
interface Client {
  ws: WebSocket;
  messages: ServerMessage[];
  events(): LiveEvent[];
  closed: Promise<number>;
  until(done: (messages: ServerMessage[]) => boolean, timeoutMs?: number): Promise<void>;
}

function url(port: number, query: Record<string, string> = {}) {
  const q = new URLSearchParams(query).toString();
  return `ws://127.0.0.1:${port}/api/v6/live${q ? `?${q}` : ''}`;
}

async function connect(
  port: number,
  options: { headers?: Record<string, string>; query?: Record<string, string> } = {},
): Promise<Client> {
  const ws = new WebSocket(url(port, options.query), { headers: options.headers });
  sockets.push(ws);
  const messages: ServerMessage[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as ServerMessage));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
  const client: Client = {
    ws,
    messages,
    events: () => messages.filter((m): m is LiveEvent => m.type === 'event'),
    closed,
    until: (done, timeoutMs = 20_000) =>
      eventually(async () => messages, done, { timeoutMs, intervalMs: 20 }).then(() => undefined),
  };
  await client.until((m) => m.some((x) => x.type === 'ready'));
  return client;
}

/** The HTTP status an upgrade is refused with (0: it was accepted). */
async function refusal(
  port: number,
  options: { headers?: Record<string, string>; query?: Record<string, string>; path?: string } = {},
) {
  const target = options.path ? `ws://127.0.0.1:${port}${options.path}` : url(port, options.query);
  const ws = new WebSocket(target, { headers: options.headers });
  sockets.push(ws);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    ws.once('open', () => resolve({ status: 0, body: '' }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? -1, body }));
    });
    ws.once('error', reject);
  });
}

async function bearer(userId: string, tenantId: string | null, platformAdmin = false) {
  return (await tokens.issue({ userId, tenantId, platformAdmin })).accessToken;
}

async function makeUser(name: string, membership?: [string, string], platformAdmin = false) {
  const { rows } = await su.query<{ id: string }>(
    'INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id',
    [`${name}-${randomUUID().slice(0, 8)}@example.test`, name, 'unused'],
  );
  const id = rows[0]!.id;
  if (membership)
    await su.query('INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)', [
      membership[0],
      id,
      membership[1],
    ]);
  if (platformAdmin) await su.query('INSERT INTO platform_admins (user_id) VALUES ($1)', [id]);
  return id;
}

function change(tenant: TestTenant): OccupancyChangeRecord {
  clock += 1_000;
  return {
    eventId: randomUUID(),
    tenantId: tenant.tenantId,
    devEui: tenant.devEui,
    spaceId: tenant.spaceId,
    time: clock,
    confirmedAt: clock + 5_000,
    state: clock % 2000 === 0 ? 'occupied' : 'free',
    previousState: 'unknown',
    previousDurationMs: null,
    uplinkEventId: randomUUID(),
  };
}

/** As the occupancy processor does: the row commits first, then the record is published (outbox). */
async function record(changes: OccupancyChangeRecord[]) {
  for (const c of changes)
    await su.query(
      `INSERT INTO occupancy_changes (tenant_id, time, event_id, space_id, dev_eui, state, previous_state,
                                      previous_duration_s)
       VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, NULL)`,
      [c.tenantId, c.time, c.eventId, c.spaceId, c.devEui, c.state, c.previousState],
    );
}

async function publish(changes: OccupancyChangeRecord[]) {
  if (changes.length === 0) return;
  await producer.send({
    topic,
    acks: -1,
    messages: await Promise.all(
      changes.map(async (c) => ({
        key: c.spaceId,
        value: await serde.encode(c),
        headers: { 'event-id': c.eventId },
      })),
    ),
  });
}

const ids = (events: LiveEvent[]) => events.map((e) => e.id);

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  pool = createPool(config.postgres.apiUrl, 'live-test', 6);
  await createTestTopic(config.kafka.controlPort, topic, 3);
  serde = await registerValueSchema(
    createSchemaRegistry(config.schemaRegistry),
    topic,
    readAvroSchema('occupancy-change'),
  );
  producer = createKafka(config.kafka, logger, `live-test-${run}-producer`).producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  [a, b] = await Promise.all([createTestTenant(), createTestTenant()]);
  await startInstance(1);
  await startInstance(2);
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  for (const instance of instances.reverse()) await instance.stop();
  await producer?.disconnect();
  await pool?.end();
  await su?.end();
});

describe('live updates over WebSocket', () => {
  it("delivers a tenant's change to its clients on both instances, and never to another tenant's", async () => {
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const owner = await makeUser('owner-a', [a.tenantId, 'viewer']);
    const a1 = await connect(one.port, {
      headers: { authorization: `Bearer ${await bearer(owner, a.tenantId)}` },
    });
    const a2 = await connect(two.port, { headers: { 'x-api-key': a.apiKey } });
    const b1 = await connect(one.port, { headers: { 'x-api-key': b.apiKey } });
    const b2 = await connect(two.port, {
      query: { access_token: await bearer(await makeUser('owner-b', [b.tenantId, 'owner']), b.tenantId) },
    });
    const forA = change(a);
    await publish([forA]);
    await a1.until(() => a1.events().length === 1);
    await a2.until(() => a2.events().length === 1);
    expect(a1.events()).toEqual([fromOccupancyChange(forA)]);
    expect(a2.events()).toEqual([fromOccupancyChange(forA)]);
    // A's change has gone through both hubs; B's clients now get B's change and nothing before it.
    const forB = change(b);
    await publish([forB]);
    await b1.until(() => b1.events().length === 1);
    await b2.until(() => b2.events().length === 1);
    expect(ids(b1.events())).toEqual([forB.eventId]);
    expect(ids(b2.events())).toEqual([forB.eventId]);
    expect(ids(a1.events())).toEqual([forA.eventId]);
    expect(b1.messages[0]).toEqual({ type: 'ready', tenantId: b.tenantId, resume: { status: 'none' } });
  });

  it('refuses bad, missing and insufficient credentials before the upgrade, with problem+json', async () => {
    const port = instances[0]!.port;
    const member = await makeUser('member-a', [a.tenantId, 'viewer']);
    const noScopeKey = `pk_test_${randomBytes(18).toString('base64url')}`;
    await su.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
      a.tenantId,
      'write-only',
      hashApiKey(noScopeKey),
      ['webhooks:write'],
    ]);
    const cases: Array<[string, Parameters<typeof refusal>[1], number]> = [
      ['no credentials', {}, 401],
      ['a tampered token', { query: { access_token: `${await bearer(member, a.tenantId)}x` } }, 401],
      ['an unknown API key', { headers: { 'x-api-key': 'pk_test_nope' } }, 401],
      ['a key that may read no live kind', { headers: { 'x-api-key': noScopeKey } }, 403],
      [
        'a member selecting another tenant',
        { query: { access_token: await bearer(member, a.tenantId), tenantId: b.tenantId } },
        403,
      ],
      [
        'a malformed lastEventId',
        { headers: { 'x-api-key': a.apiKey }, query: { lastEventId: 'nope' } },
        400,
      ],
      ['another path', { headers: { 'x-api-key': a.apiKey }, path: '/api/v6/elsewhere' }, 404],
    ];
    for (const [name, options, status] of cases) {
      const result = await refusal(port, options);
      expect(result.status, name).toBe(status);
      expect(JSON.parse(result.body), name).toMatchObject({ status });
    }
    expect(instances[0]!.live!.stats().refused).toBeGreaterThanOrEqual(cases.length);
  });

  it('resumes after a reconnect on another instance with exactly the missed events, live ones deduplicated at the seam', async () => {
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const first = await connect(one.port, { headers: { 'x-api-key': a.apiKey } });
    const seen = [change(a), change(a)];
    await record(seen);
    await publish(seen);
    await first.until(() => first.events().length === 2);
    first.ws.close();
    await first.closed;
    // Missed while away: e3 fully published; e4 committed, its record still in the outbox (published later).
    const [e3, e4] = [change(a), change(a)];
    await record([e3, e4]);
    await publish([e3]);
    await new Promise((r) => setTimeout(r, 300));
    const again = await connect(two.port, {
      headers: { 'x-api-key': a.apiKey },
      query: { lastEventId: seen[1]!.eventId },
    });
    await publish([e4]);
    const e5 = change(a);
    await record([e5]);
    await publish([e5]);
    await again.until(() => again.events().some((e) => e.id === e5.eventId));
    await new Promise((r) => setTimeout(r, 300));
    expect(again.messages.map((m) => (m.type === 'event' ? m.id : m.type))).toEqual([
      e3.eventId,
      e4.eventId,
      'ready',
      e5.eventId,
    ]);
    expect(again.messages[2]).toMatchObject({ resume: { status: 'replayed', count: 2 } });
    expect(again.events()[0]).toEqual(fromOccupancyChange(e3));
  });

  it('tells the client to resync when the gap cannot be replayed', async () => {
    const port = instances[0]!.port;
    const unknown = await connect(port, {
      headers: { 'x-api-key': a.apiKey },
      query: { lastEventId: randomUUID() },
    });
    expect(unknown.messages[0]).toMatchObject({
      type: 'ready',
      resume: { status: 'resync', reason: 'cursor-unknown' },
    });
    const old = await connect(port, {
      headers: { 'x-api-key': a.apiKey },
      query: { since: new Date(Date.now() - 2 * 3_600_000).toISOString() },
    });
    expect(old.messages[0]).toMatchObject({ resume: { status: 'resync', reason: 'too-old' } });
    const cursor = change(b);
    const many = Array.from({ length: liveOptions.replayMaxEvents + 1 }, () => change(b));
    await record([cursor, ...many]);
    const tooMany = await connect(port, {
      headers: { 'x-api-key': b.apiKey },
      query: { lastEventId: cursor.eventId },
    });
    expect(tooMany.messages).toEqual([
      { type: 'ready', tenantId: b.tenantId, resume: { status: 'resync', reason: 'too-many' } },
    ]);
  });

  it("gives a platform admin the selected tenant's events only, and audits the access", async () => {
    const admin = await makeUser('platform', undefined, true);
    const client = await connect(instances[1]!.port, {
      query: { access_token: await bearer(admin, null, true), tenantId: b.tenantId },
    });
    const [forA, forB] = [change(a), change(b)];
    await publish([forA]);
    await publish([forB]);
    await client.until(() => client.events().length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(ids(client.events())).toEqual([forB.eventId]);
    const { rows } = await su.query<{ reason: string }>(
      'SELECT reason FROM platform_admin_access_log WHERE user_id = $1',
      [admin],
    );
    expect(rows.map((r) => r.reason)).toEqual([`live updates in tenant ${b.tenantId}`]);
  });

  it('cuts off a client that stops reading at its buffer bound (4008) while a reading client gets everything', async () => {
    const one = instances[0]!;
    const slow = await connect(one.port, { headers: { 'x-api-key': a.apiKey } });
    const fast = await connect(one.port, { headers: { 'x-api-key': a.apiKey } });
    slow.ws.pause();
    let sent = 0;
    while (one.live!.stats().dropped['slow-consumer'] === 0) {
      if (sent > 200_000) throw new Error('the slow client was never cut off');
      await publish(Array.from({ length: 1_000 }, () => change(a)));
      sent += 1_000;
      await new Promise((r) => setTimeout(r, 50));
    }
    await fast.until(() => fast.events().length === sent, 60_000);
    slow.ws.resume();
    expect(await slow.closed).toBe(4008);
    expect(slow.events().length).toBeLessThan(sent);
    expect(one.live!.stats().dropped['slow-consumer']).toBe(1);
  });

  it('closes its sockets with 1001 on shutdown', async () => {
    const third = await startInstance(3);
    const client = await connect(third.port, { headers: { 'x-api-key': a.apiKey } });
    instances.pop();
    await third.stop();
    expect(await client.closed).toBe(1001);
  });
});
