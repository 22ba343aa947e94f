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
import type {
  DeviceStatusRecord,
  LivenessAlertRecord,
  OccupancyChangeRecord,
  ReservationEventRecord,
} from '../../schemas/avro/records.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import { createTokenService } from '../auth/tokens.js';
import { start } from '../service.js';
import {
  fromDeviceStatus,
  fromLivenessAlert,
  fromOccupancyChange,
  fromReservationEvent,
  liveEventKinds,
  type LiveEvent,
  type ServerMessage,
} from './envelope.js';
import type { LiveTopics } from './kafka-source.js';
import type { LiveServer } from './server.js';

/**
 * Live updates end to end: the real API (two instances, each its own consumer group) over real sockets, per-run
 * topics on the mock broker (one per record type) with Avro records encoded through the registry as the
 * producers write them, and matching occupancy_changes / liveness_alerts rows in PostgreSQL for the replay path,
 * written with the statements the processors use.
 */
const config = loadConfig();
const logger = createLogger('live-test', 'silent');
const run = randomUUID().slice(0, 8);
const topics: LiveTopics = {
  occupancyChanges: `test-live-${run}-occupancy`,
  deviceStatus: `test-live-${run}-status`,
  livenessAlerts: `test-live-${run}-alerts`,
  reservationEvents: `test-live-${run}-reservations`,
};
const tokens = createTokenService(config.apiAuth);
const liveOptions = {
  ...config.apiLive,
  replayMaxEvents: 5,
  replayLookbackMs: 10_000,
  maxBufferedBytes: 32 * 1024,
  heartbeatMs: 60_000,
  closeGraceMs: 10_000,
};

let su: pg.Client;
let pool: Pool;
let producer: Producer;
let serdes: {
  occupancyChanges: AvroSerde<OccupancyChangeRecord>;
  deviceStatus: AvroSerde<DeviceStatusRecord>;
  livenessAlerts: AvroSerde<LivenessAlertRecord>;
  reservationEvents: AvroSerde<ReservationEventRecord>;
};
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
      topics,
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

function change(tenant: TestTenant, time?: number): OccupancyChangeRecord {
  clock += 1_000;
  const at = time ?? clock;
  return {
    eventId: randomUUID(),
    tenantId: tenant.tenantId,
    devEui: tenant.devEui,
    spaceId: tenant.spaceId,
    time: at,
    confirmedAt: at + 5_000,
    state: clock % 2000 === 0 ? 'occupied' : 'free',
    previousState: 'unknown',
    previousDurationMs: null,
    uplinkEventId: randomUUID(),
  };
}

function status(tenant: TestTenant): DeviceStatusRecord {
  clock += 1_000;
  return {
    eventId: randomUUID(),
    tenantId: tenant.tenantId,
    devEui: tenant.devEui,
    time: clock,
    receivedAt: clock + 20,
    source: 'MQTT',
    applicationId: 'app-1',
    margin: 7,
    externalPowerSource: false,
    batteryLevel: 81.5,
  };
}

/** A raise (no `raise` given) or the clear of `raise`, for the tenant's sensor or the given gateway. */
function alert(
  tenant: TestTenant,
  entity: { gatewayId: string } | 'device',
  raise?: LivenessAlertRecord,
): LivenessAlertRecord {
  clock += 1_000;
  const eventId = randomUUID();
  const device = entity === 'device';
  return {
    eventId,
    tenantId: tenant.tenantId,
    devEui: device ? tenant.devEui : null,
    kind: device ? 'device' : 'gateway',
    entityId: device ? tenant.devEui : entity.gatewayId,
    state: raise ? 'cleared' : 'raised',
    time: clock,
    lastHeard: raise ? clock - 200 : clock - 900_000,
    alertId: raise?.alertId ?? eventId,
  };
}

function reservation(tenant: TestTenant): ReservationEventRecord {
  clock += 1_000;
  return {
    eventId: randomUUID(),
    tenantId: tenant.tenantId,
    devEui: tenant.devEui,
    reservationId: randomUUID(),
    spaceId: tenant.spaceId,
    type: 'created',
    status: 'confirmed',
    previousStatus: null,
    startsAt: clock + 3_600_000,
    endsAt: clock + 7_200_000,
    userId: null,
    time: clock,
  };
}

/**
 * As the occupancy processor does: the row commits first, then the record is published (outbox). `recordedAt`
 * overrides when the row's position was taken (the column default), to place it relative to the lookback.
 */
async function record(changes: OccupancyChangeRecord[], recordedAt?: Date) {
  for (const c of changes)
    await su.query(
      `INSERT INTO occupancy_changes (tenant_id, time, event_id, space_id, dev_eui, state, previous_state,
                                      previous_duration_s, recorded_at)
       VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, NULL, coalesce($8, clock_timestamp()))`,
      [c.tenantId, c.time, c.eventId, c.spaceId, c.devEui, c.state, c.previousState, recordedAt ?? null],
    );
}

/**
 * As the liveness processor does (processors/liveness/apply.ts): a raise inserts the row, a clear closes it.
 * Through `db` (a transaction left open, say); `raisedAt` overrides when a raise's position was taken.
 */
async function recordAlerts(alerts: LivenessAlertRecord[], db: pg.Client = su, raisedAt?: Date) {
  for (const x of alerts)
    if (x.state === 'raised')
      await db.query(
        `INSERT INTO liveness_alerts (tenant_id, alert_id, kind, entity_id, raised_at, last_heard_at,
                                      raised_recorded_at)
         VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), to_timestamp($6 / 1000.0),
                 coalesce($7, clock_timestamp()))
         ON CONFLICT DO NOTHING`,
        [x.tenantId, x.alertId, x.kind, x.entityId, x.time, x.lastHeard, raisedAt ?? null],
      );
    else
      await db.query(
        `UPDATE liveness_alerts
            SET cleared_at = to_timestamp($3 / 1000.0), clear_event_id = $4, last_heard_at = to_timestamp($5 / 1000.0),
                updated_at = now()
          WHERE tenant_id = $1 AND alert_id = $2 AND cleared_at IS NULL`,
        [x.tenantId, x.alertId, x.time, x.eventId, x.lastHeard],
      );
}

interface Records {
  occupancyChanges: OccupancyChangeRecord;
  deviceStatus: DeviceStatusRecord;
  livenessAlerts: LivenessAlertRecord;
  reservationEvents: ReservationEventRecord;
}

const keyOf = {
  occupancyChanges: (r: OccupancyChangeRecord) => r.spaceId,
  deviceStatus: (r: DeviceStatusRecord) => r.devEui,
  livenessAlerts: (r: LivenessAlertRecord) => r.entityId,
  reservationEvents: (r: ReservationEventRecord) => r.spaceId,
};

async function publishTo<K extends keyof Records>(kind: K, records: Array<Records[K]>) {
  if (records.length === 0) return;
  const serde = serdes[kind] as AvroSerde<Records[K]>;
  const key = keyOf[kind] as (r: Records[K]) => string;
  await producer.send({
    topic: topics[kind],
    acks: -1,
    messages: await Promise.all(
      records.map(async (r) => ({
        key: key(r),
        value: await serde.encode(r),
        headers: { 'event-id': r.eventId },
      })),
    ),
  });
}

const publish = (changes: OccupancyChangeRecord[]) => publishTo('occupancyChanges', changes);

/** One event of every kind for the tenant, published, with the envelopes a client must receive. */
async function oneOfEach(tenant: TestTenant, gatewayId: string) {
  const c = change(tenant);
  const s = status(tenant);
  const d = alert(tenant, 'device');
  const g = alert(tenant, { gatewayId });
  const r = reservation(tenant);
  await publishTo('occupancyChanges', [c]);
  await publishTo('deviceStatus', [s]);
  await publishTo('livenessAlerts', [d, g]);
  await publishTo('reservationEvents', [r]);
  return [
    fromOccupancyChange(c),
    fromDeviceStatus(s),
    fromLivenessAlert(d),
    fromLivenessAlert(g),
    fromReservationEvent(r),
  ];
}

/** A test tenant whose `apiKey` may read every live kind (the fixture's key reads spaces only). */
async function readerTenant(): Promise<TestTenant> {
  const tenant = await createTestTenant();
  const apiKey = `pk_test_${randomBytes(18).toString('base64url')}`;
  await su.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
    tenant.tenantId,
    'live-reader',
    hashApiKey(apiKey),
    ['spaces:read', 'devices:read', 'gateways:read', 'reservations:read'],
  ]);
  return { ...tenant, apiKey };
}

/** The positions (live_event_seq) of changes and raises by event id, in the order given. */
async function positions(ids: string[]): Promise<bigint[]> {
  const { rows } = await su.query<{ id: string; seq: string }>(
    `SELECT event_id::text AS id, seq::text FROM occupancy_changes WHERE event_id = ANY($1::uuid[])
     UNION ALL
     SELECT alert_id::text, raised_seq::text FROM liveness_alerts WHERE alert_id = ANY($1::uuid[])
     UNION ALL
     SELECT clear_event_id::text, cleared_seq::text FROM liveness_alerts WHERE clear_event_id = ANY($1::uuid[])`,
    [ids],
  );
  return ids.map((id) => BigInt(rows.find((r) => r.id === id)?.seq ?? '-1'));
}

const ascending = (xs: bigint[]) => xs.every((x, i) => i === 0 || xs[i - 1]! < x);

const byId = (events: LiveEvent[]) => [...events].sort((x, y) => x.id.localeCompare(y.id));
const gateway = () => randomBytes(8).toString('hex').toUpperCase();

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  pool = createPool(config.postgres.apiUrl, 'live-test', 6);
  const registry = createSchemaRegistry(config.schemaRegistry);
  for (const topic of Object.values(topics)) await createTestTopic(config.kafka.controlPort, topic, 3);
  serdes = {
    occupancyChanges: await registerValueSchema(
      registry,
      topics.occupancyChanges,
      readAvroSchema('occupancy-change'),
    ),
    deviceStatus: await registerValueSchema(registry, topics.deviceStatus, readAvroSchema('device-status')),
    livenessAlerts: await registerValueSchema(
      registry,
      topics.livenessAlerts,
      readAvroSchema('liveness-alert'),
    ),
    reservationEvents: await registerValueSchema(
      registry,
      topics.reservationEvents,
      readAvroSchema('reservation-event'),
    ),
  };
  producer = createKafka(config.kafka, logger, `live-test-${run}-producer`).producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  [a, b] = await Promise.all([readerTenant(), readerTenant()]);
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
  it("delivers each kind of a tenant's events to its clients on both instances, and never to another tenant's", async () => {
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
    const forA = await oneOfEach(a, gateway());
    await a1.until(() => a1.events().length === forA.length);
    await a2.until(() => a2.events().length === forA.length);
    expect(byId(a1.events())).toEqual(byId(forA));
    expect(byId(a2.events())).toEqual(byId(forA));
    expect(forA.map((e) => e.kind)).toEqual([...liveEventKinds]);
    // A's events have gone through both hubs; B's clients now get B's events and nothing before them.
    const forB = await oneOfEach(b, gateway());
    await b1.until(() => b1.events().length === forB.length);
    await b2.until(() => b2.events().length === forB.length);
    expect(byId(b1.events())).toEqual(byId(forB));
    expect(byId(b2.events())).toEqual(byId(forB));
    expect(byId(a1.events())).toEqual(byId(forA));
    expect(b1.messages[0]).toEqual({
      type: 'ready',
      tenantId: b.tenantId,
      kinds: [...liveEventKinds],
      resume: { status: 'none' },
    });
  });

  it('sends only the kinds a client asked for and its credentials may read', async () => {
    const port = instances[0]!.port;
    const key = `pk_test_${randomBytes(18).toString('base64url')}`;
    await su.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
      a.tenantId,
      'spaces-and-devices',
      hashApiKey(key),
      ['spaces:read', 'devices:read'],
    ]);
    const scoped = await connect(port, { headers: { 'x-api-key': key } });
    const alertsOnly = await connect(port, {
      headers: { 'x-api-key': a.apiKey },
      query: { kinds: 'device.alert,gateway.alert' },
    });
    const narrowed = await connect(port, {
      headers: { 'x-api-key': key },
      query: { kinds: 'gateway.alert,device.alert' },
    });
    const events = await oneOfEach(a, gateway());
    const of = (...kinds: string[]) => byId(events.filter((e) => kinds.includes(e.kind)));
    await scoped.until(() => scoped.events().length === 3);
    await alertsOnly.until(() => alertsOnly.events().length === 2);
    await narrowed.until(() => narrowed.events().length === 1);
    // Everything was published before the last awaited event of each topic's partition reached the hub.
    await new Promise((r) => setTimeout(r, 300));
    expect(byId(scoped.events())).toEqual(of('occupancy.changed', 'device.status', 'device.alert'));
    expect(byId(alertsOnly.events())).toEqual(of('device.alert', 'gateway.alert'));
    expect(byId(narrowed.events())).toEqual(of('device.alert'));
    expect(scoped.messages[0]).toMatchObject({
      kinds: ['occupancy.changed', 'device.status', 'device.alert'],
    });
    expect(narrowed.messages[0]).toMatchObject({ kinds: ['device.alert'] });
  });

  it('refuses bad, missing and insufficient credentials before the upgrade, with problem+json', async () => {
    const port = instances[0]!.port;
    const member = await makeUser('member-a', [a.tenantId, 'viewer']);
    const noScopeKey = `pk_test_${randomBytes(18).toString('base64url')}`;
    const spacesKey = `pk_test_${randomBytes(18).toString('base64url')}`;
    await su.query(
      `INSERT INTO api_keys (tenant_id, name, key_hash, scopes)
       VALUES ($1, 'write-only', $2, $3), ($1, 'spaces-only', $4, $5)`,
      [a.tenantId, hashApiKey(noScopeKey), ['webhooks:write'], hashApiKey(spacesKey), ['spaces:read']],
    );
    const valid = await bearer(member, a.tenantId);
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${valid.split('.')[1]}.`;
    const expired = (
      await createTokenService({ ...config.apiAuth, accessTokenTtlS: -60 }).issue({
        userId: member,
        tenantId: a.tenantId,
        platformAdmin: false,
      })
    ).accessToken;
    const cases: Array<[string, Parameters<typeof refusal>[1], number]> = [
      ['no credentials', {}, 401],
      ['a tampered token', { query: { access_token: `${valid}x` } }, 401],
      ['an alg:none token', { query: { access_token: unsigned } }, 401],
      ['an expired token', { query: { access_token: expired } }, 401],
      ['an unknown API key', { headers: { 'x-api-key': 'pk_test_nope' } }, 401],
      ['a key that may read no live kind', { headers: { 'x-api-key': noScopeKey } }, 403],
      [
        'a key asking only for kinds it may not read',
        { headers: { 'x-api-key': spacesKey }, query: { kinds: 'device.status,reservation.changed' } },
        403,
      ],
      [
        'an unknown kind',
        { headers: { 'x-api-key': a.apiKey }, query: { kinds: 'occupancy.changed,nope' } },
        400,
      ],
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
    const before = instances[0]!.live!.stats().refused;
    for (const [name, options, status] of cases) {
      const result = await refusal(port, options);
      expect(result.status, name).toBe(status);
      expect(JSON.parse(result.body), name).toMatchObject({ status });
    }
    expect(instances[0]!.live!.stats().refused - before).toBe(cases.length);
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
    // seen[0] again: positioned before the cursor and recorded within the lookback (a repeat the client drops).
    expect(again.messages.map((m) => (m.type === 'event' ? m.id : m.type))).toEqual([
      seen[0]!.eventId,
      e3.eventId,
      e4.eventId,
      'ready',
      e5.eventId,
    ]);
    expect(again.messages[3]).toMatchObject({ resume: { status: 'replayed', count: 3 } });
    expect(again.events()[1]).toEqual(fromOccupancyChange(e3));
  });

  it('replays a change recorded after the cursor even when it happened before it (position order, not time order)', async () => {
    const t = await readerTenant();
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const first = await connect(one.port, { headers: { 'x-api-key': t.apiKey } });
    const later = change(t);
    await record([later]);
    await publish([later]);
    await first.until(() => first.events().length === 1);
    first.ws.close();
    await first.closed;
    // Recorded after `later` was seen, but it happened 30 s before it (another partition, a late confirmation).
    const earlier = change(t, later.time - 30_000);
    await record([earlier]);
    const again = await connect(two.port, {
      headers: { 'x-api-key': t.apiKey },
      query: { lastEventId: later.eventId },
    });
    // Up to `ready` (instance two may still deliver `later` live afterwards: clients drop repeats by id).
    expect(again.messages.slice(0, 2)).toEqual([
      fromOccupancyChange(earlier),
      {
        type: 'ready',
        tenantId: t.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'replayed', count: 1 },
      },
    ]);
  });

  it('resumes alerts too, in the order they were recorded and merged with changes; status and reservations are live only', async () => {
    const t = await readerTenant();
    const gw = gateway();
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const first = await connect(one.port, { headers: { 'x-api-key': t.apiKey } });
    const cursor = alert(t, 'device');
    await recordAlerts([cursor]);
    await publishTo('livenessAlerts', [cursor]);
    await first.until(() => first.events().length === 1);
    first.ws.close();
    await first.closed;
    // While away: the device alert clears, a gateway falls silent and comes back, a space changes, and a status
    // and a reservation are published (not recorded by anything the API reads).
    const gwRaise = alert(t, { gatewayId: gw });
    const c = change(t);
    const gwClear = alert(t, { gatewayId: gw }, gwRaise);
    const deviceClear = alert(t, 'device', cursor);
    await recordAlerts([gwRaise]);
    await record([c]);
    await recordAlerts([gwClear, deviceClear]);
    await publishTo('livenessAlerts', [gwRaise, gwClear, deviceClear]);
    await publish([c]);
    await publishTo('deviceStatus', [status(t)]);
    await publishTo('reservationEvents', [reservation(t)]);
    await new Promise((r) => setTimeout(r, 300));
    const again = await connect(two.port, {
      headers: { 'x-api-key': t.apiKey },
      query: { lastEventId: cursor.eventId },
    });
    const replayed = [gwRaise, c, gwClear, deviceClear].map((x) =>
      'spaceId' in x ? fromOccupancyChange(x) : fromLivenessAlert(x),
    );
    expect(again.messages).toEqual([
      ...replayed,
      {
        type: 'ready',
        tenantId: t.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'replayed', count: 4 },
      },
    ]);
    // The clear's id is a cursor too, and a client that asked for gateway alerts only gets those.
    const gatewaysOnly = await connect(one.port, {
      headers: { 'x-api-key': t.apiKey },
      query: { lastEventId: gwRaise.eventId, kinds: 'gateway.alert' },
    });
    expect(gatewaysOnly.messages).toEqual([
      fromLivenessAlert(gwClear),
      {
        type: 'ready',
        tenantId: t.tenantId,
        kinds: ['gateway.alert'],
        resume: { status: 'replayed', count: 1 },
      },
    ]);
    // By time: what happened after the cursor alert was raised, in time order.
    const since = await connect(two.port, {
      headers: { 'x-api-key': t.apiKey },
      query: { since: new Date(cursor.time).toISOString() },
    });
    expect(since.events()).toEqual(replayed);
  });

  it('replays what was positioned before the cursor but reached the client after it: committed later, or on a partition fetched later (lookback)', async () => {
    const t = await readerTenant();
    const gw = gateway();
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const first = await connect(one.port, { headers: { 'x-api-key': t.apiKey } });
    const tx = new pg.Client({ connectionString: config.postgres.migrateUrl });
    await tx.connect();
    try {
      // Positioned first, committed last: its transaction is still open when the cursor is delivered.
      const inFlight = alert(t, 'device');
      await tx.query('BEGIN');
      await recordAlerts([inFlight], tx);
      // Committed before the cursor, their records not yet delivered (other partitions, fetched later).
      const delayed = change(t);
      await record([delayed]);
      const raise = alert(t, { gatewayId: gw });
      await recordAlerts([raise]);
      const cursor = change(t);
      await record([cursor]);
      await publish([cursor]);
      await first.until(() => first.events().length === 1);
      first.ws.close();
      await first.closed;
      await tx.query('COMMIT');
      const ids = [inFlight, delayed, raise, cursor].map((x) => x.eventId);
      expect(ascending(await positions(ids))).toBe(true);
      const again = await connect(two.port, {
        headers: { 'x-api-key': t.apiKey },
        query: { lastEventId: cursor.eventId },
      });
      // Up to `ready` (the cursor itself is not replayed; instance two may deliver it live afterwards).
      expect(again.messages.slice(0, 4)).toEqual([
        fromLivenessAlert(inFlight),
        fromOccupancyChange(delayed),
        fromLivenessAlert(raise),
        {
          type: 'ready',
          tenantId: t.tenantId,
          kinds: [...liveEventKinds],
          resume: { status: 'replayed', count: 3 },
        },
      ]);
    } finally {
      await tx.end();
    }
  });

  it('does not replay what was recorded longer than the lookback before the cursor', async () => {
    const t = await readerTenant();
    const lookback = liveOptions.replayLookbackMs;
    const at = Date.now() - 1_000;
    // In position order: a raise and a change recorded 1 ms too early, a change exactly at the lookback's start,
    // the raise's clear (recorded now, after the cursor's time but positioned before it), the cursor.
    const oldRaise = alert(t, { gatewayId: gateway() });
    await recordAlerts([oldRaise], su, new Date(at - lookback - 1));
    const tooOld = change(t);
    await record([tooOld], new Date(at - lookback - 1));
    const edge = change(t);
    await record([edge], new Date(at - lookback));
    const clear = alert(t, { gatewayId: oldRaise.entityId }, oldRaise);
    await recordAlerts([clear]);
    const cursor = change(t);
    await record([cursor], new Date(at));
    const ids = [oldRaise, tooOld, edge, clear, cursor].map((x) => x.eventId);
    expect(ascending(await positions(ids))).toBe(true);
    const again = await connect(instances[0]!.port, {
      headers: { 'x-api-key': t.apiKey },
      query: { lastEventId: cursor.eventId },
    });
    expect(again.messages).toEqual([
      fromOccupancyChange(edge),
      fromLivenessAlert(clear),
      {
        type: 'ready',
        tenantId: t.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'replayed', count: 2 },
      },
    ]);
  });

  it("answers another tenant's event id as an unknown cursor, and replays none of that tenant's events", async () => {
    const port = instances[0]!.port;
    const t = await readerTenant();
    const [before, cursor] = [change(t), change(t)];
    await record([before, cursor]);
    const resync = [
      {
        type: 'ready',
        tenantId: b.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'resync', reason: 'cursor-unknown' },
      },
    ];
    const foreign = await connect(port, {
      headers: { 'x-api-key': b.apiKey },
      query: { lastEventId: cursor.eventId },
    });
    const unknown = await connect(port, {
      headers: { 'x-api-key': b.apiKey },
      query: { lastEventId: randomUUID() },
    });
    expect(foreign.messages).toEqual(resync);
    expect(unknown.messages).toEqual(resync);
    // The same id is a cursor for its own tenant (with the lookback's `before`).
    const own = await connect(port, {
      headers: { 'x-api-key': t.apiKey },
      query: { lastEventId: cursor.eventId },
    });
    expect(own.messages).toEqual([
      fromOccupancyChange(before),
      {
        type: 'ready',
        tenantId: t.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'replayed', count: 1 },
      },
    ]);
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
      {
        type: 'ready',
        tenantId: b.tenantId,
        kinds: [...liveEventKinds],
        resume: { status: 'resync', reason: 'too-many' },
      },
    ]);
  });

  it("gives a platform admin the selected tenant's events of every kind only, and audits the access", async () => {
    const admin = await makeUser('platform', undefined, true);
    const client = await connect(instances[1]!.port, {
      query: { access_token: await bearer(admin, null, true), tenantId: b.tenantId },
    });
    await oneOfEach(a, gateway());
    const forB = await oneOfEach(b, gateway());
    await client.until(() => client.events().length === forB.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(byId(client.events())).toEqual(byId(forB));
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
