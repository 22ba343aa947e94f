import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import {
  createSchemaRegistry,
  decodeAvro,
  registerValueSchema,
  type AvroSerde,
} from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { parseCommandDown, type CommandDown } from '../../ingest/simulator/chirpstack-sim.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type {
  DownlinkOutcomeRecord,
  OccupancyChangeRecord,
  ReservationEventRecord,
} from '../../schemas/avro/records.js';
import { encodeDisplay } from '../../processors/downlink/encoders.js';
import { defaultDisplayPolicy, type DisplayKind } from '../../processors/display/reduce.js';
import { startDisplays, type Displays } from '../../processors/display/run.js';
import { startReservations, type Reservations } from '../../processors/reservations/run.js';
import { reservationV5 } from '../v5/views.js';
import { cancelReservation, createReservation, getReservation } from './reservations.js';

/**
 * Reservations through the whole pipeline on the real stack: created and cancelled by the API's service (as the
 * API role, in a tenant transaction), published by the lifecycle job, shown by the display processor, sent to a
 * simulated ChirpStack over MQTT and acknowledged (txack) on the outcome topic. The clock is the test's: each step
 * moves it and runs one job tick and one display tick (scoped to the test's tenant), then waits until the
 * downlinks are acknowledged; the display commands ChirpStack received are compared with the expected list.
 */
const config = loadConfig();
const logger = createLogger('reservations-pipeline-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const min = 60_000;
let migrate: pg.Client;
let apiPool: Pool;
let pipelinePool: Pool;
let producer: Producer;
let chirpstack: MqttClient;
let received: CommandDown[] = [];
let clock = 0;

interface Setup {
  tenantId: string;
  spaceId: string;
  sensorEui: string;
  displayEui: string;
  topics: {
    occupancyChanges: string;
    downlinkOutcomes: string;
    deadLetter: string;
    reservationEvents: string;
  };
  displays: Displays;
  job: Reservations;
  changes: AvroSerde<OccupancyChangeRecord>;
  outcomes: AvroSerde<DownlinkOutcomeRecord>;
}
let current: Setup | undefined;

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  apiPool = createPool(config.postgres.apiUrl, 'reservations-pipeline-api', 2);
  pipelinePool = createPool(config.postgres.pipelineUrl, 'reservations-pipeline', 6);
  producer = createKafka(config.kafka, logger, 'reservations-pipeline').producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  chirpstack = await mqtt.connectAsync(config.mqtt.url, { clientId: `cs-sim-${randomUUID().slice(0, 8)}` });
  await chirpstack.subscribeAsync('application/+/device/+/command/down', { qos: 1 });
  chirpstack.on('message', (topic, body) => {
    const command = parseCommandDown(topic, body);
    if (!current || command.devEui !== current.displayEui.toLowerCase()) return;
    received.push(command);
    void txack(current, command);
  });
});

afterEach(async () => {
  await current?.job.stop();
  await current?.displays.stop();
  current = undefined;
  received = [];
});

afterAll(async () => {
  await chirpstack?.endAsync();
  await producer?.disconnect();
  await apiPool?.end();
  await pipelinePool?.end();
  await migrate?.end();
});

/** ChirpStack's gateway acknowledgement, at the test's clock. */
async function txack(setup: Setup, command: CommandDown): Promise<void> {
  const record: DownlinkOutcomeRecord = {
    eventId: randomUUID(),
    tenantId: setup.tenantId,
    devEui: command.devEui.toUpperCase(),
    time: clock,
    receivedAt: clock,
    source: 'MQTT',
    applicationId: command.applicationId,
    kind: 'TXACK',
    queueItemId: command.id,
    acknowledged: null,
    fCntDown: received.length,
    downlinkId: 1,
    gatewayId: '0016C001FF10A235',
  };
  await producer.send({
    topic: setup.topics.downlinkOutcomes,
    acks: -1,
    messages: [{ key: record.devEui, value: await setup.outcomes.encode(record) }],
  });
}

/** A tenant with one space (sensor and Busylight display), and the job and display processor scoped to it. */
async function setUp(): Promise<Setup> {
  const run = randomUUID().slice(0, 8);
  const { rows } = await migrate.query<{ id: string }>(
    'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
    [`resv-pipe-${run}`],
  );
  const tenantId = rows[0]!.id;
  const space = await migrate.query<{ id: string }>(
    "INSERT INTO spaces (tenant_id, code, name) VALUES ($1, 'P-1', 'P-1') RETURNING id",
    [tenantId],
  );
  const spaceId = space.rows[0]!.id;
  const sensorEui = randomDevEui();
  const displayEui = randomDevEui();
  await migrate.query(
    "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
    [tenantId, sensorEui, spaceId],
  );
  await migrate.query(
    'INSERT INTO chirpstack_applications (tenant_id, application_id, name) VALUES ($1, $2, $3)',
    [tenantId, `app-${run}`, 'displays'],
  );
  await migrate.query(
    `INSERT INTO display_devices (tenant_id, dev_eui, space_id, device_type, f_port)
     VALUES ($1, $2, $3, 'kuando-busylight', 15)`,
    [tenantId, displayEui, spaceId],
  );
  const topics = {
    occupancyChanges: `test-rp-changes-${run}`,
    downlinkOutcomes: `test-rp-outcomes-${run}`,
    deadLetter: `test-rp-dlq-${run}`,
    reservationEvents: `test-rp-events-${run}`,
    // The occupancy consumer's input the no-show gate watches: empty, so caught up.
    uplinks: `test-rp-uplinks-${run}`,
  };
  for (const topic of Object.values(topics)) await createTestTopic(config.kafka.controlPort, topic, 1);
  const changes = await registerValueSchema<OccupancyChangeRecord>(
    registry,
    topics.occupancyChanges,
    readAvroSchema('occupancy-change'),
  );
  const outcomes = await registerValueSchema<DownlinkOutcomeRecord>(
    registry,
    topics.downlinkOutcomes,
    readAvroSchema('downlink-outcome'),
  );
  const displays = await startDisplays({
    kafka: createKafka(config.kafka, logger, `rp-disp-${run}`),
    registry,
    pipelinePool,
    mqtt: chirpstack,
    topics,
    groupIds: { changes: `rp-changes-${run}`, outcomes: `rp-outcomes-${run}` },
    logger,
    tick: { everyMs: 3_600_000, maxItems: 100 },
    display: { confirmTimeoutMs: 3_600_000, reservationLeadMs: 15 * min },
    now: () => clock,
    tenants: [tenantId],
  });
  const job = await startReservations({
    kafka: createKafka(config.kafka, logger, `rp-job-${run}`),
    registry,
    pipelinePool,
    topics: { reservationEvents: topics.reservationEvents },
    occupancy: { groupId: `rp-occupancy-${run}`, topic: topics.uplinks },
    judgeGate: { maxLag: 0, settleMs: 0 },
    logger,
    tick: { everyMs: 3_600_000, batchSize: 100, maxBatches: 10 },
    policy: { noShowGraceMs: 15 * min },
    now: () => clock,
    tenants: [tenantId],
  });
  current = { tenantId, spaceId, sensorEui, displayEui, topics, displays, job, changes, outcomes };
  return current;
}

function reserve(setup: Setup, from: number, to: number) {
  return withTenant(
    apiPool,
    setup.tenantId,
    (db) =>
      createReservation(db, setup.tenantId, {
        spaceId: setup.spaceId,
        startsAt: new Date(from).toISOString(),
        endsAt: new Date(to).toISOString(),
        userId: null,
        requestId: randomUUID(),
      }),
    { actor: { type: 'system', id: 'reservations-pipeline-int' } },
  );
}

function cancel(setup: Setup, reservationId: string) {
  return withTenant(apiPool, setup.tenantId, (db) => cancelReservation(db, setup.tenantId, reservationId), {
    actor: { type: 'system', id: 'reservations-pipeline-int' },
  });
}

async function sensor(setup: Setup, state: 'free' | 'occupied', at: number): Promise<void> {
  const record: OccupancyChangeRecord = {
    eventId: randomUUID(),
    tenantId: setup.tenantId,
    devEui: setup.sensorEui,
    spaceId: setup.spaceId,
    time: at,
    confirmedAt: at,
    state,
    previousState: state === 'free' ? 'occupied' : 'free',
    previousDurationMs: null,
    uplinkEventId: randomUUID(),
  };
  // What the occupancy processor writes beside its event: the job judges attendance from it.
  await migrate.query(
    `INSERT INTO occupancy_changes (tenant_id, time, event_id, space_id, dev_eui, state)
     VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6)`,
    [setup.tenantId, at, record.eventId, setup.spaceId, setup.sensorEui, state],
  );
  await producer.send({
    topic: setup.topics.occupancyChanges,
    acks: -1,
    messages: [{ key: setup.spaceId, value: await setup.changes.encode(record) }],
  });
  await eventually(
    () => jobs(setup),
    (j) => j.some((x) => x.status === 'queued'),
  );
}

async function jobs(setup: Setup): Promise<Array<{ status: string }>> {
  const { rows } = await migrate.query<{ status: string }>(
    'SELECT status FROM downlink_jobs WHERE tenant_id = $1 ORDER BY created_at, id',
    [setup.tenantId],
  );
  return rows;
}

/** Moves the clock to `at`, runs one job tick and one display tick, waits until every downlink is acknowledged. */
async function step(setup: Setup, at: number): Promise<void> {
  clock = at;
  await setup.job.tickOnce();
  await setup.displays.tickOnce();
  await eventually(
    () => jobs(setup),
    (j) => j.every((x) => x.status === 'acked' || x.status === 'superseded'),
  );
}

/** The Busylight payloads ChirpStack received, as the display kinds they encode. */
function shown(): DisplayKind[] {
  const kinds: DisplayKind[] = ['free', 'occupied', 'reserved', 'reserved-soon', 'maintenance'];
  const byPayload = new Map(
    kinds.map((k) => [encodeDisplay('kuando-busylight', k, defaultDisplayPolicy.looks[k]).payloadHex, k]),
  );
  return received.map(
    (c) => byPayload.get(c.data.toString('hex')) ?? (`?${c.data.toString('hex')}` as DisplayKind),
  );
}

async function events(
  setup: Setup,
): Promise<Array<Pick<ReservationEventRecord, 'type' | 'status' | 'time'>>> {
  const { rows } = await migrate.query<{ value: Buffer }>(
    'SELECT value FROM outbox WHERE tenant_id = $1 AND topic = $2 ORDER BY seq',
    [setup.tenantId, setup.topics.reservationEvents],
  );
  const decoded = await Promise.all(rows.map((r) => decodeAvro<ReservationEventRecord>(registry, r.value)));
  return decoded.map((e) => ({ type: e.type, status: e.status, time: e.time }));
}

// Two days ahead, on a minute: far from any other test's reservations.
const T = Math.floor((Date.now() + 2 * 86_400_000) / min) * min;

describe('reservations through the pipeline', () => {
  it('created through the API: reserved-soon 15 minutes before, reserved during, the sensor state after the end', async () => {
    const setup = await setUp();
    clock = T - 60 * min;
    await sensor(setup, 'occupied', T - 60 * min);
    await step(setup, T - 60 * min);
    expect(shown()).toEqual(['occupied']);

    const { row } = await reserve(setup, T, T + 30 * min);
    await step(setup, T - 60 * min);
    expect(shown()).toEqual(['occupied']);
    await step(setup, T - 15 * min - 1);
    expect(shown()).toEqual(['occupied']);
    await step(setup, T - 15 * min);
    expect(shown()).toEqual(['occupied', 'reserved-soon']);
    await step(setup, T);
    expect(shown()).toEqual(['occupied', 'reserved-soon', 'reserved']);
    // Occupied since before the start: arrived, not a no-show; still reserved.
    await step(setup, T + 15 * min);
    expect(shown()).toEqual(['occupied', 'reserved-soon', 'reserved']);
    await step(setup, T + 30 * min);
    expect(shown()).toEqual(['occupied', 'reserved-soon', 'reserved', 'occupied']);

    const { rows } = await migrate.query<{
      status: string;
      arrived_at: Date | null;
      next_tick_at: Date | null;
    }>(
      `SELECT r.status, r.arrived_at, s.next_tick_at FROM reservations r
         JOIN display_states s ON s.tenant_id = r.tenant_id WHERE r.id = $1`,
      [row.id],
    );
    expect(rows).toEqual([{ status: 'expired', arrived_at: new Date(T), next_tick_at: null }]);
    expect(await events(setup)).toEqual([
      { type: 'created', status: 'confirmed', time: row.created_at.getTime() },
      { type: 'expired', status: 'expired', time: T + 30 * min },
    ]);
  });

  it('cancelled through the API: the display shows the sensor state again after one tick', async () => {
    const setup = await setUp();
    // A display that never had a command: the reservation (within the lead already) is its first.
    const { row } = await reserve(setup, T, T + 60 * min);
    await step(setup, T - 10 * min);
    expect(shown()).toEqual(['reserved-soon']);
    const cancelled = await cancel(setup, row.id);
    await step(setup, T - 10 * min);
    expect(shown()).toEqual(['reserved-soon', 'free']);
    // Nothing left to show or to wake for.
    await step(setup, T);
    await step(setup, T + 60 * min);
    expect(shown()).toEqual(['reserved-soon', 'free']);
    expect(await events(setup)).toEqual([
      { type: 'created', status: 'confirmed', time: row.created_at.getTime() },
      { type: 'cancelled', status: 'cancelled', time: cancelled.cancelled_at!.getTime() },
    ]);
  });

  it('a no-show frees the display at start + grace', async () => {
    const setup = await setUp();
    clock = T - 60 * min;
    await sensor(setup, 'free', T - 60 * min);
    const { row } = await reserve(setup, T, T + 60 * min);
    await step(setup, T - 60 * min);
    await step(setup, T - 15 * min);
    await step(setup, T);
    await step(setup, T + 15 * min - 1);
    expect(shown()).toEqual(['free', 'reserved-soon', 'reserved']);
    // The sensor is heard (still free) at start + grace: the evidence a no-show needs.
    await migrate.query(
      'UPDATE spaces SET last_event_time = to_timestamp($3 / 1000.0) WHERE tenant_id = $1 AND id = $2',
      [setup.tenantId, setup.spaceId, T + 15 * min],
    );
    await step(setup, T + 15 * min);
    expect(shown()).toEqual(['free', 'reserved-soon', 'reserved', 'free']);
    await step(setup, T + 60 * min);
    expect(shown()).toEqual(['free', 'reserved-soon', 'reserved', 'free']);
    expect(await events(setup)).toEqual([
      { type: 'created', status: 'confirmed', time: row.created_at.getTime() },
      { type: 'no-show', status: 'no_show', time: T + 15 * min },
    ]);
    // v6 shows it as a no-show, v5 (which has no such status) as expired; cancelling it is refused.
    const after = await withTenant(apiPool, setup.tenantId, (db) =>
      getReservation(db, setup.tenantId, row.id),
    );
    expect([after.status, reservationV5(after).status]).toEqual(['no_show', 'expired']);
    await expect(cancel(setup, row.id)).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
