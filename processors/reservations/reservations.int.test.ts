import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, decodeAvro } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import type { ReservationEventRecord } from '../../schemas/avro/records.js';
import { stableId } from '../shared/stable-id.js';
import { startReservations, type Reservations, type ReservationsDeps } from './run.js';

/**
 * The reservation lifecycle job on the real stack (PostgreSQL, mock Kafka, Schema Registry), ticked by the test
 * with a moved clock (three days in the past) and scoped to the test's tenants, so it never touches other tests'
 * rows; its own tenants' rows and outbox records are compared exactly. The occupancy consumer the no-show gate
 * watches is a test group on a test topic: empty (caught up) for `job`, holding unconsumed records for the
 * lagging case.
 */
const config = loadConfig();
const logger = createLogger('reservations-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const min = 60_000;
const T = Math.floor((Date.now() - 3 * 86_400_000) / min) * min;
let migrate: pg.Client;
let pool: Pool;
let clock = T;
let job: Reservations;
let topic: string;
let producer: Producer;
/** Jobs started by a test (besides `job`), stopped at the end. */
const extraJobs: Reservations[] = [];
/** The test's tenants: the job is scoped to them, so it neither sees nor touches other tests' rows. */
let a: string;
let b: string;

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  pool = createPool(config.postgres.pipelineUrl, 'reservations-int', 4);
  topic = `test-reservation-events-${randomUUID().slice(0, 8)}`;
  await createTestTopic(config.kafka.controlPort, topic, 1);
  a = await tenant();
  b = await tenant();
  const kafka = createKafka(config.kafka, logger, `reservations-${topic}`);
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  job = await startReservations(await jobDeps([a, b]));
});

afterAll(async () => {
  for (const j of extraJobs) await j.stop();
  await producer?.disconnect();
  await job?.stop();
  await pool?.end();
  await migrate?.end();
});

/**
 * A job's deps, scoped to `tenants`, its no-show gate on a fresh occupancy group and uplinks topic that holds
 * `backlog` records nobody consumed (lag = backlog), and lets judge at once when caught up (settle time 0: the
 * gate's settle rule is the unit tests' business; here the clock moves back and forth).
 */
async function jobDeps(
  tenants: string[],
  opts: { backlog?: number; relay?: boolean } = {},
): Promise<ReservationsDeps & { occupancy: { groupId: string; topic: string } }> {
  const uplinks = await createTestTopic(
    config.kafka.controlPort,
    `test-resv-uplinks-${randomUUID().slice(0, 8)}`,
    1,
  );
  for (let i = 0; i < (opts.backlog ?? 0); i++)
    await producer.send({ topic: uplinks, messages: [{ key: `k${i}`, value: Buffer.from([i]) }] });
  return {
    kafka: createKafka(config.kafka, logger, `reservations-${randomUUID().slice(0, 8)}`),
    registry,
    pipelinePool: pool,
    topics: { reservationEvents: topic },
    occupancy: { groupId: `test-resv-occupancy-${randomUUID().slice(0, 8)}`, topic: uplinks },
    judgeGate: { maxLag: 0, settleMs: 0 },
    logger,
    // Ticks are the test's: one at start, then only tickOnce().
    tick: { everyMs: 3_600_000, batchSize: 2, maxBatches: 1_000 },
    policy: { noShowGraceMs: 15 * min },
    now: () => clock,
    tenants,
    relay: opts.relay,
  };
}

async function tenant(): Promise<string> {
  const slug = `resv-${randomUUID().slice(0, 8)}`;
  const { rows } = await migrate.query<{ id: string }>(
    'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
    [slug],
  );
  return rows[0]!.id;
}

async function space(
  tenantId: string,
  opts: { sensor: boolean; id?: string } = { sensor: true },
): Promise<{ id: string; devEui: string | null }> {
  const { rows } = await migrate.query<{ id: string }>(
    `INSERT INTO spaces (tenant_id, id, code, name) VALUES ($1, coalesce($2::uuid, gen_random_uuid()), $3, $3)
     RETURNING id`,
    [tenantId, opts.id ?? null, `R-${randomUUID().slice(0, 6)}`],
  );
  const id = rows[0]!.id;
  if (!opts.sensor) return { id, devEui: null };
  const devEui = randomDevEui();
  await migrate.query(
    "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
    [tenantId, devEui, id],
  );
  return { id, devEui };
}

/** A reservation as the API writes it (confirmed, created now), optionally cancelled at `cancelledAt`. */
async function reserve(
  tenantId: string,
  spaceId: string,
  from: number,
  to: number,
  cancelledAt?: number,
): Promise<{ id: string; createdAt: number }> {
  const { rows } = await migrate.query<{ id: string; created_at: Date }>(
    `INSERT INTO reservations (tenant_id, space_id, during, status, request_id, cancelled_at, updated_at)
     VALUES ($1, $2, tstzrange(to_timestamp($3 / 1000.0), to_timestamp($4 / 1000.0), '[)'), $5, $6,
             to_timestamp($7 / 1000.0), coalesce(to_timestamp($7 / 1000.0), now()))
     RETURNING id, created_at`,
    [
      tenantId,
      spaceId,
      from,
      to,
      cancelledAt === undefined ? 'confirmed' : 'cancelled',
      randomUUID(),
      cancelledAt ?? null,
    ],
  );
  return { id: rows[0]!.id, createdAt: rows[0]!.created_at.getTime() };
}

async function occupancy(
  tenantId: string,
  spaceId: string,
  devEui: string,
  at: number,
  state: 'free' | 'occupied',
): Promise<void> {
  await migrate.query(
    `INSERT INTO occupancy_changes (tenant_id, time, event_id, space_id, dev_eui, state)
     VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6)`,
    [tenantId, at, randomUUID(), spaceId, devEui, state],
  );
}

/** What the occupancy processor writes for every frame it applies: the space's last frame time. */
async function heard(tenantId: string, spaceId: string, at: number): Promise<void> {
  await migrate.query(
    'UPDATE spaces SET last_event_time = to_timestamp($3 / 1000.0) WHERE tenant_id = $1 AND id = $2',
    [tenantId, spaceId, at],
  );
}

interface Row {
  id: string;
  status: string;
  announced_status: string | null;
  attendance_checked_at: number | null;
  arrived_at: number | null;
}

async function rows(tenantId: string): Promise<Record<string, Omit<Row, 'id'>>> {
  const { rows: found } = await migrate.query<{
    id: string;
    status: string;
    announced_status: string | null;
    attendance_checked_at: Date | null;
    arrived_at: Date | null;
  }>(
    `SELECT id, status, announced_status, attendance_checked_at, arrived_at FROM reservations
      WHERE tenant_id = $1`,
    [tenantId],
  );
  return Object.fromEntries(
    found.map((r) => [
      r.id,
      {
        status: r.status,
        announced_status: r.announced_status,
        attendance_checked_at: r.attendance_checked_at?.getTime() ?? null,
        arrived_at: r.arrived_at?.getTime() ?? null,
      },
    ]),
  );
}

async function outbox(
  tenantId: string,
): Promise<Array<{ topic: string; key: string; id: string; time: number; value: ReservationEventRecord }>> {
  const { rows: found } = await migrate.query<{
    topic: string;
    key: string;
    id: string;
    time: Date;
    value: Buffer;
  }>('SELECT topic, key, id, time, value FROM outbox WHERE tenant_id = $1 ORDER BY seq', [tenantId]);
  return Promise.all(
    found.map(async (r) => ({
      topic: r.topic,
      key: r.key,
      id: r.id,
      time: r.time.getTime(),
      value: await decodeAvro<ReservationEventRecord>(registry, r.value),
    })),
  );
}

/** One tick at `at`, then a second one at the same time that must find nothing of `tenants` left to do. */
async function tickAt(at: number, tenants: readonly string[]): Promise<void> {
  clock = at;
  await job.tickOnce();
  const again = await job.tickOnce();
  expect(again.changes.filter((c) => tenants.includes(c.tenantId))).toEqual([]);
}

function event(
  tenantId: string,
  r: { id: string },
  s: { id: string; devEui: string | null },
  type: ReservationEventRecord['type'],
  status: ReservationEventRecord['status'],
  previousStatus: ReservationEventRecord['previousStatus'],
  time: number,
  interval: [number, number] = [T, T + 60 * min],
) {
  const eventId = stableId('reservation-event', tenantId, r.id, type);
  return {
    topic,
    key: s.id,
    id: eventId,
    time,
    value: {
      eventId,
      tenantId,
      devEui: s.devEui,
      reservationId: r.id,
      spaceId: s.id,
      type,
      status,
      previousStatus,
      startsAt: interval[0],
      endsAt: interval[1],
      userId: null,
      time,
    },
  };
}

describe('reservation lifecycle job', () => {
  it('publishes created and cancelled, judges attendance once, marks no-shows, expires; exact rows and outbox records; tenants stay apart', async () => {
    const arrived = await space(a);
    const empty = await space(a);
    const unsensed = await space(a, { sensor: false });
    const cancelledSpace = await space(a);
    // Tenant B's space has the same id as A's empty one, and is occupied: A's judgement must not see it.
    const twin = await space(b, { sensor: true, id: empty.id });
    await occupancy(a, arrived.id, arrived.devEui!, T + 5 * min, 'occupied');
    await occupancy(a, empty.id, empty.devEui!, T - 30 * min, 'free');
    await occupancy(b, twin.id, twin.devEui!, T - 30 * min, 'occupied');
    // The empty space's sensor is heard (reporting free) at the judgement's point: the no-show has evidence.
    await heard(a, empty.id, T + 15 * min);
    const r1 = await reserve(a, arrived.id, T, T + 60 * min);
    const r2 = await reserve(a, empty.id, T, T + 60 * min);
    const r3 = await reserve(a, unsensed.id, T, T + 60 * min);
    const r4 = await reserve(a, cancelledSpace.id, T, T + 60 * min, T - 40 * min);
    const rb = await reserve(b, twin.id, T, T + 60 * min);

    // Before the start: every creation published (r4 also its cancellation), nothing else changes.
    await tickAt(T - 30 * min, [a, b]);
    const announced = (status: string) => ({
      status,
      announced_status: status,
      attendance_checked_at: null,
      arrived_at: null,
    });
    expect(await rows(a)).toEqual({
      [r1.id]: announced('confirmed'),
      [r2.id]: announced('confirmed'),
      [r3.id]: announced('confirmed'),
      [r4.id]: announced('cancelled'),
    });

    // Within the grace: nothing.
    await tickAt(T + 15 * min - 1, [a, b]);
    expect(Object.values(await rows(a)).map((r) => r.attendance_checked_at)).toEqual([
      null,
      null,
      null,
      null,
    ]);

    // Grace over: r1 arrived at T+5, r2 no-show, r3 cannot be judged (no sensor), r4 untouched; B's twin arrived.
    const judged = T + 15 * min;
    await tickAt(judged, [a, b]);
    expect(await rows(a)).toEqual({
      [r1.id]: { ...announced('confirmed'), attendance_checked_at: judged, arrived_at: T + 5 * min },
      [r2.id]: announced('no_show'),
      [r3.id]: { ...announced('confirmed'), attendance_checked_at: judged },
      [r4.id]: announced('cancelled'),
    });
    expect(await rows(b)).toEqual({
      [rb.id]: { ...announced('confirmed'), attendance_checked_at: judged, arrived_at: T },
    });

    // End: the confirmed ones expire; the no-show and the cancelled one stay as they are.
    await tickAt(T + 60 * min, [a, b]);
    expect(await rows(a)).toEqual({
      [r1.id]: { ...announced('expired'), attendance_checked_at: judged, arrived_at: T + 5 * min },
      [r2.id]: announced('no_show'),
      [r3.id]: { ...announced('expired'), attendance_checked_at: judged },
      [r4.id]: announced('cancelled'),
    });
    await tickAt(T + 120 * min, [a, b]);

    const created = (r: { id: string; createdAt: number }, s: { id: string; devEui: string | null }) =>
      event(a, r, s, 'created', 'confirmed', null, r.createdAt);
    const expected = [
      created(r1, arrived),
      created(r2, empty),
      created(r3, unsensed),
      created(r4, cancelledSpace),
      event(a, r4, cancelledSpace, 'cancelled', 'cancelled', 'confirmed', T - 40 * min),
      event(a, r2, empty, 'no-show', 'no_show', 'confirmed', judged),
      event(a, r1, arrived, 'expired', 'expired', 'confirmed', T + 60 * min),
      event(a, r3, unsensed, 'expired', 'expired', 'confirmed', T + 60 * min),
    ];
    const published = await outbox(a);
    const order = (x: { time: number; id: string }, y: { time: number; id: string }) =>
      x.time - y.time || (x.id < y.id ? -1 : 1);
    expect([...published].sort(order)).toEqual([...expected].sort(order));
    // One reservation's events are published in the order they happened.
    const types = (id: string) =>
      published.filter((p) => p.value.reservationId === id).map((p) => p.value.type);
    expect([r1, r2, r3, r4].map((r) => types(r.id))).toEqual([
      ['created', 'expired'],
      ['created', 'no-show'],
      ['created', 'expired'],
      ['created', 'cancelled'],
    ]);
    // The relay publishes them (and marks them sent) on its own.
    await eventually(
      async () =>
        (
          await migrate.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL',
            [a],
          )
        ).rows[0]!.n,
      (n) => n === 0,
    );
    expect(await outbox(b)).toEqual([
      event(b, rb, twin, 'created', 'confirmed', null, rb.createdAt),
      event(b, rb, twin, 'expired', 'expired', 'confirmed', T + 60 * min),
    ]);
  });

  /** A job of its own, scoped to `tenants`, started with the clock before any judgement is due. */
  async function ownJob(tenants: string[], opts: { backlog?: number; relay?: boolean } = {}) {
    clock = T - 60 * min;
    const deps = await jobDeps(tenants, { relay: false, ...opts });
    const started = await startReservations(deps);
    extraJobs.push(started);
    return { job: started, deps };
  }

  it('a sensor silent since start + 5 min: the judgement is deferred tick after tick, then the reservation expires, never a no-show', async () => {
    const c = await tenant();
    const silent = await space(c);
    // Last heard (free) 5 minutes after the start: alive then, but nothing proves it saw the rest of the grace.
    await heard(c, silent.id, T + 5 * min);
    await occupancy(c, silent.id, silent.devEui!, T - 30 * min, 'free');
    const r = await reserve(c, silent.id, T, T + 60 * min);
    const { job: own } = await ownJob([c]);
    const unjudged = {
      status: 'confirmed',
      announced_status: 'confirmed',
      attendance_checked_at: null,
      arrived_at: null,
    };

    for (const at of [T + 15 * min, T + 40 * min]) {
      clock = at;
      const tick = await own.tickOnce();
      expect([tick.pipelineCaughtUp, tick.lag]).toEqual([true, 0]);
      expect(tick.deferred).toEqual([{ tenantId: c, reservationId: r.id, reason: 'sensor-silent' }]);
      expect(await rows(c)).toEqual({ [r.id]: unjudged });
    }
    clock = T + 60 * min;
    const end = await own.tickOnce();
    expect(end.deferred).toEqual([{ tenantId: c, reservationId: r.id, reason: 'sensor-silent' }]);
    expect(await rows(c)).toEqual({
      [r.id]: { ...unjudged, status: 'expired', announced_status: 'expired' },
    });
    expect((await outbox(c)).map((o) => o.value.type)).toEqual(['created', 'expired']);
  });

  it('the occupancy consumer lagging (uplinks produced to its topic, not consumed): no no-show; caught up, the same evidence judges', async () => {
    const c = await tenant();
    const s1 = await space(c);
    const s2 = await space(c);
    // Both sensors heard after start + grace, both spaces never occupied: only the gate is missing.
    await heard(c, s1.id, T + 16 * min);
    await heard(c, s2.id, T + 16 * min);
    const r1 = await reserve(c, s1.id, T, T + 60 * min);
    const r2 = await reserve(c, s2.id, T, T + 60 * min);
    const { job: own, deps } = await ownJob([c], { backlog: 3 });

    clock = T + 20 * min;
    const lagging = await own.tickOnce();
    expect([lagging.pipelineCaughtUp, lagging.lag]).toEqual([false, 3]);
    // With the gate closed a judgement alone does not even select the rows.
    expect([lagging.reservations, lagging.deferred]).toEqual([0, []]);
    expect(Object.values(await rows(c)).map((x) => [x.status, x.attendance_checked_at])).toEqual([
      ['confirmed', null],
      ['confirmed', null],
    ]);

    // r1 ends while the consumer still lags: it expires.
    await migrate.query(
      `UPDATE reservations SET during = tstzrange(lower(during), to_timestamp($3 / 1000.0), '[)')
        WHERE tenant_id = $1 AND id = $2`,
      [c, r1.id, T + 30 * min],
    );
    clock = T + 30 * min;
    const ended = await own.tickOnce();
    expect(ended.deferred).toEqual([{ tenantId: c, reservationId: r1.id, reason: 'pipeline-behind' }]);
    expect((await rows(c))[r1.id]!.status).toBe('expired');

    // The consumer catches up (its stored offset reaches the log end): r2 is judged a no-show.
    await migrate.query(
      `INSERT INTO processor_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, 0, 3)`,
      [deps.occupancy.groupId, deps.occupancy.topic],
    );
    clock = T + 31 * min;
    const caughtUp = await own.tickOnce();
    expect([caughtUp.pipelineCaughtUp, caughtUp.lag, caughtUp.deferred]).toEqual([true, 0, []]);
    expect((await rows(c))[r2.id]!.status).toBe('no_show');
    const published = await outbox(c);
    const types = (id: string) =>
      published.filter((x) => x.value.reservationId === id).map((x) => x.value.type);
    expect([types(r1.id), types(r2.id)]).toEqual([
      ['created', 'expired'],
      ['created', 'no-show'],
    ]);
  });

  it('two job instances ticking concurrently over the same reservations write each event exactly once', async () => {
    const c = await tenant();
    const made: Array<{ id: string; space: { id: string }; empty: boolean }> = [];
    for (let i = 0; i < 12; i++) {
      const s = await space(c);
      const empty = i % 2 === 0;
      await heard(c, s.id, T + 15 * min);
      if (!empty) await occupancy(c, s.id, s.devEui!, T + 3 * min, 'occupied');
      const r = await reserve(c, s.id, T, T + 60 * min);
      made.push({ id: r.id, space: s, empty });
    }
    // Each instance's first tick (at its start) publishes the creations; then they tick side by side.
    const one = (await ownJob([c])).job;
    const two = (await ownJob([c])).job;
    const ticks = [];
    for (const at of [T - 30 * min, T + 15 * min, T + 60 * min]) {
      clock = at;
      ticks.push(...(await Promise.all([one.tickOnce(), two.tickOnce(), one.tickOnce(), two.tickOnce()])));
    }
    const written = ticks.flatMap((t) => t.events.map((e) => e.eventId));
    const created = made.map((r) => stableId('reservation-event', c, r.id, 'created'));
    const final = made.map((r) => stableId('reservation-event', c, r.id, r.empty ? 'no-show' : 'expired'));
    // Each no-show and expiry written by exactly one of the concurrent ticks, and every event stored once.
    expect([...written].sort()).toEqual([...final].sort());
    expect((await outbox(c)).map((o) => o.id).sort()).toEqual([...created, ...final].sort());
    expect(
      Object.values(await rows(c))
        .map((x) => x.status)
        .sort(),
    ).toEqual([...Array<string>(6).fill('expired'), ...Array<string>(6).fill('no_show')]);
  });
});
