import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, registerValueSchema, type AvroSerde } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually, randomDevEui } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { parseCommandDown, type CommandDown } from '../../ingest/simulator/chirpstack-sim.js';
import { readAvroSchema } from '../../schemas/catalog.js';
import type {
  DownlinkOutcomeRecord,
  OccupancyChangeRecord,
  UplinkRecord,
} from '../../schemas/avro/records.js';
import { encodeDisplay } from '../downlink/encoders.js';
import { startOccupancy, type OccupancyProcessor } from '../occupancy/run.js';
import { defaultDisplayPolicy, type DisplayState } from './reduce.js';
import { startDisplays, type Displays } from './run.js';

/**
 * The display and downlink chain on the real stack (mock Kafka, PostgreSQL, Mosquitto), with a simulated
 * ChirpStack: it subscribes to `application/+/device/+/command/down` on the broker, checks each command as
 * ChirpStack would (parseCommandDown), and answers with txack (and ack for confirmed downlinks) as
 * downlink-outcome records on the test's outcome topic — what ingest publishes for ChirpStack's events. Ticks are
 * run by the test (tickOnce), so "two changes before the next tick" is a fact, not a race.
 */
const config = loadConfig();
const logger = createLogger('displays-int', 'error');
const registry = createSchemaRegistry(config.schemaRegistry);
const applicationId = randomUUID();
let migrate: pg.Client;
let pool: Pool;
let producer: Producer;
let chirpstack: MqttClient;
let received: Array<CommandDown & { at: number }> = [];
/** DevEUIs (lower-case) the simulated ChirpStack answers; the others' commands are received and left silent. */
const answering = new Set<string>();
let outcomeSerde: AvroSerde<DownlinkOutcomeRecord>;
let changeSerde: AvroSerde<OccupancyChangeRecord>;
let uplinkSerde: AvroSerde<UplinkRecord>;

interface Setup {
  run: string;
  tenantId: string;
  spaceId: string;
  sensorEui: string;
  displayEui: string;
  topics: { uplinks: string; occupancyChanges: string; downlinkOutcomes: string; deadLetter: string };
  displays: Displays;
  occupancy?: OccupancyProcessor;
}
let current: Setup | undefined;

beforeAll(async () => {
  migrate = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await migrate.connect();
  pool = createPool(config.postgres.pipelineUrl, 'displays-int', 6);
  producer = createKafka(config.kafka, logger, 'displays-int').producer({ allowAutoTopicCreation: false });
  await producer.connect();
  chirpstack = await mqtt.connectAsync(config.mqtt.url, {
    clientId: `chirpstack-sim-${randomUUID().slice(0, 8)}`,
  });
  await chirpstack.subscribeAsync('application/+/device/+/command/down', { qos: 1 });
  chirpstack.on('message', (topic, body) => {
    const command = parseCommandDown(topic, body);
    received.push({ ...command, at: Date.now() });
    if (current && answering.has(command.devEui)) void answer(current, command);
  });
});

afterEach(async () => {
  await current?.occupancy?.stop();
  await current?.displays.stop();
  current = undefined;
  received = [];
  answering.clear();
});

afterAll(async () => {
  await chirpstack?.endAsync();
  await producer?.disconnect();
  await pool?.end();
  await migrate?.end();
});

/** ChirpStack's answer: a txack from the gateway, and the device's ack when the downlink was confirmed. */
async function answer(setup: Setup, command: CommandDown): Promise<void> {
  const base = {
    tenantId: setup.tenantId,
    devEui: command.devEui.toUpperCase(),
    time: Date.now(),
    receivedAt: Date.now(),
    source: 'MQTT' as const,
    applicationId: command.applicationId,
    queueItemId: command.id,
    fCntDown: received.length,
  };
  const records: DownlinkOutcomeRecord[] = [
    {
      ...base,
      eventId: randomUUID(),
      kind: 'TXACK',
      acknowledged: null,
      downlinkId: 7,
      gatewayId: '0016C001FF10A235',
    },
  ];
  if (command.confirmed)
    records.push({
      ...base,
      eventId: randomUUID(),
      kind: 'ACK',
      acknowledged: true,
      downlinkId: null,
      gatewayId: null,
    });
  await producer.send({
    topic: setup.topics.downlinkOutcomes,
    acks: -1,
    messages: await Promise.all(
      records.map(async (r) => ({ key: r.devEui, value: await outcomeSerde.encode(r) })),
    ),
  });
}

async function setUp(display: {
  deviceType: string | null;
  confirmed?: boolean;
  fPort?: number;
  codes?: Record<string, string>;
  downlink?: { baseBackoffMs: number; maxBackoffMs: number };
  withOccupancy?: boolean;
}): Promise<Setup> {
  const run = randomUUID().slice(0, 8);
  const { rows } = await migrate.query<{ id: string }>(
    'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
    [`disp-${run}`],
  );
  const tenantId = rows[0]!.id;
  const space = await migrate.query<{ id: string }>(
    "INSERT INTO spaces (tenant_id, code, name) VALUES ($1, 'D-1', 'D-1') RETURNING id",
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
    [tenantId, `${applicationId.slice(0, 24)}${run}`, 'displays'],
  );
  await migrate.query(
    `INSERT INTO display_devices (tenant_id, dev_eui, space_id, device_type, f_port, confirmed_downlinks, display_codes)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      tenantId,
      displayEui,
      spaceId,
      display.deviceType,
      display.fPort ?? 1,
      display.confirmed ?? false,
      JSON.stringify(display.codes ?? {}),
    ],
  );
  const topics = {
    uplinks: `test-disp-uplinks-${run}`,
    occupancyChanges: `test-disp-changes-${run}`,
    downlinkOutcomes: `test-disp-outcomes-${run}`,
    deadLetter: `test-disp-dlq-${run}`,
  };
  for (const topic of Object.values(topics)) await createTestTopic(config.kafka.controlPort, topic, 1);
  outcomeSerde = await registerValueSchema(
    registry,
    topics.downlinkOutcomes,
    readAvroSchema('downlink-outcome'),
  );
  changeSerde = await registerValueSchema(
    registry,
    topics.occupancyChanges,
    readAvroSchema('occupancy-change'),
  );
  uplinkSerde = await registerValueSchema(registry, topics.uplinks, readAvroSchema('uplink'));
  const displays = await startDisplays({
    kafka: createKafka(config.kafka, logger, `disp-${run}`),
    registry,
    pipelinePool: pool,
    mqtt: chirpstack,
    topics,
    groupIds: { changes: `disp-changes-${run}`, outcomes: `disp-outcomes-${run}` },
    logger,
    // Ticks are the test's: one at start, then only tickOnce().
    tick: { everyMs: 3_600_000, maxItems: 100 },
    display: { confirmTimeoutMs: 3_600_000 },
    downlink: { maxAttempts: 5, ...(display.downlink ?? { baseBackoffMs: 60_000, maxBackoffMs: 60_000 }) },
  });
  const setup: Setup = { run, tenantId, spaceId, sensorEui, displayEui, topics, displays };
  if (display.withOccupancy)
    setup.occupancy = await startOccupancy({
      kafka: createKafka(config.kafka, logger, `disp-occ-${run}`),
      registry,
      pipelinePool: pool,
      topics,
      groupId: `disp-occ-${run}`,
      logger,
    });
  current = setup;
  answering.add(displayEui.toLowerCase());
  return setup;
}

async function sendChange(setup: Setup, state: 'free' | 'occupied', at: number): Promise<void> {
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
  await producer.send({
    topic: setup.topics.occupancyChanges,
    acks: -1,
    messages: [{ key: setup.spaceId, value: await changeSerde.encode(record) }],
  });
}

async function displayState(setup: Setup): Promise<DisplayState | undefined> {
  const { rows } = await migrate.query<{ state: DisplayState }>(
    'SELECT state FROM display_states WHERE tenant_id = $1 AND dev_eui = $2',
    [setup.tenantId, setup.displayEui],
  );
  return rows[0]?.state;
}

async function jobs(
  setup: Setup,
): Promise<Array<{ id: string; status: string; attempts: number; payload: string }>> {
  const { rows } = await migrate.query<{ id: string; status: string; attempts: number; payload: string }>(
    `SELECT id, status, attempts, encode(payload, 'hex') AS payload FROM downlink_jobs
      WHERE tenant_id = $1 ORDER BY created_at, id`,
    [setup.tenantId],
  );
  return rows;
}

function commandsFor(setup: Setup): Array<CommandDown & { at: number }> {
  return received.filter((c) => c.devEui === setup.displayEui.toLowerCase());
}

async function settle(ms = 500): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

describe('displays and downlinks on the runtime', () => {
  it('an uplink pair confirms "occupied": the Heltec display gets 02 on fPort 1, ChirpStack txacks, job and display are confirmed', async () => {
    const setup = await setUp({ deviceType: 'heltec-1byte', withOccupancy: true });
    const t0 = Date.now() - 5_000;
    for (const [i, time] of [t0, t0 + 2_000].entries()) {
      const uplink: UplinkRecord = {
        eventId: randomUUID(),
        tenantId: setup.tenantId,
        devEui: setup.sensorEui,
        spaceId: setup.spaceId,
        time,
        receivedAt: time + 20,
        source: 'MQTT',
        applicationId: 'app',
        fCnt: i + 1,
        fPort: 102,
        codec: 'browan-tbms100',
        occupied: true,
        batteryVolts: 3.6,
        temperatureC: 20,
        rssi: -90,
        snr: 7,
        gatewayIds: [],
        payload: Buffer.from([1]),
        frameType: null,
        batteryStatus: null,
      };
      await producer.send({
        topic: setup.topics.uplinks,
        acks: -1,
        messages: [{ key: uplink.devEui, value: await uplinkSerde.encode(uplink) }],
      });
    }
    // occupancy change → display command → one queued job, nothing sent before the tick.
    const [queued] = await eventually(
      () => jobs(setup),
      (j) => j.length === 1,
    );
    expect(queued).toMatchObject({ status: 'queued', attempts: 0, payload: '02' });
    expect(commandsFor(setup)).toEqual([]);

    await setup.displays.tickOnce();
    await eventually(
      () => jobs(setup),
      (j) => j[0]?.status === 'acked',
    );
    const commands = commandsFor(setup);
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatchObject({
      id: queued!.id,
      fPort: 1,
      confirmed: false,
      data: Buffer.from([0x02]),
    });
    const state = await displayState(setup);
    expect(state?.lastCommand).toMatchObject({ kind: 'occupied', confirmed: true });
    const { rows: outcomes } = await migrate.query<{ outcome: string }>(
      'SELECT outcome FROM downlink_outcomes WHERE tenant_id = $1 ORDER BY time, outcome',
      [setup.tenantId],
    );
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['enqueued', 'tx-ack']);
    const { rows: gw } = await migrate.query<{ gateway_id: string; next_tick_at: Date | null }>(
      'SELECT gateway_id, next_tick_at FROM display_states WHERE tenant_id = $1',
      [setup.tenantId],
    );
    expect(gw[0]).toEqual({ gateway_id: '0016C001FF10A235', next_tick_at: null });
  });

  it('two changes before the tick coalesce: only the latest is sent (Busylight, confirmed: txack and ack)', async () => {
    const setup = await setUp({ deviceType: 'kuando-busylight', confirmed: true });
    const t0 = Date.now();
    await sendChange(setup, 'occupied', t0);
    await sendChange(setup, 'free', t0 + 1_000);
    await eventually(
      () => jobs(setup),
      (j) => j.length === 2,
    );
    expect((await jobs(setup)).map((j) => j.status)).toEqual(['superseded', 'queued']);

    await setup.displays.tickOnce();
    await eventually(
      () => displayState(setup),
      (s) => s?.lastCommand?.confirmed === true,
    );
    await settle();
    const expected = encodeDisplay('kuando-busylight', 'free', defaultDisplayPolicy.looks.free);
    const commands = commandsFor(setup);
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatchObject({
      fPort: 15,
      confirmed: true,
      data: Buffer.from(expected.payloadHex, 'hex'),
    });
    expect(expected.payloadHex).toBe('0000ff6400');
    expect((await jobs(setup)).map((j) => j.status)).toEqual(['superseded', 'acked']);
  });

  it('without an answer a job is sent 5 times with growing backoff, then dead-lettered; the display stays unconfirmed', async () => {
    const setup = await setUp({
      deviceType: 'heltec-1byte',
      downlink: { baseBackoffMs: 100, maxBackoffMs: 400 },
    });
    answering.clear();
    await sendChange(setup, 'occupied', Date.now());
    await eventually(
      () => jobs(setup),
      (j) => j.length === 1,
    );
    await eventually(
      async () => {
        await setup.displays.tickOnce();
        return jobs(setup);
      },
      (j) => j[0]?.status === 'failed',
      { intervalMs: 20, timeoutMs: 20_000 },
    );
    await settle();
    const commands = commandsFor(setup);
    expect(commands).toHaveLength(5);
    // Attempt n waits min(400, 100·2^(n-1)) ms for its confirmation before attempt n+1. Measured on the send
    // decisions the processor records (one 'enqueued' outcome per attempt, at its tick's time), not on MQTT
    // arrival times, which add the relay's and the broker's jitter on a loaded machine.
    const { rows: attempts } = await migrate.query<{ at: Date }>(
      "SELECT time AS at FROM downlink_outcomes WHERE tenant_id = $1 AND outcome = 'enqueued' ORDER BY time",
      [setup.tenantId],
    );
    expect(attempts).toHaveLength(5);
    const gaps = attempts.slice(1).map((a, i) => a.at.getTime() - attempts[i]!.at.getTime());
    [100, 200, 400, 400].forEach((backoff, i) => expect(gaps[i]).toBeGreaterThanOrEqual(backoff));
    expect((await jobs(setup))[0]).toMatchObject({ status: 'failed', attempts: 5 });
    const { rows: dead } = await migrate.query<{ headers: Record<string, string>; sent: boolean }>(
      'SELECT headers, sent_at IS NOT NULL AS sent FROM outbox WHERE tenant_id = $1 AND topic = $2',
      [setup.tenantId, setup.topics.deadLetter],
    );
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers['error-code']).toBe('DOWNLINK_UNCONFIRMED');
    await eventually(
      async () =>
        (
          await migrate.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM outbox WHERE tenant_id = $1 AND topic = $2 AND sent_at IS NOT NULL',
            [setup.tenantId, setup.topics.deadLetter],
          )
        ).rows[0]!.n,
      (n) => n === 1,
    );
    expect((await displayState(setup))?.lastCommand).toMatchObject({ kind: 'occupied', confirmed: false });
  });

  it('a payload confirmed within the hour is not sent again; per-device display codes on the device fPort', async () => {
    const setup = await setUp({ deviceType: null, fPort: 7, codes: { free: 'A1', occupied: 'A2' } });
    const t0 = Date.now();
    await sendChange(setup, 'occupied', t0);
    await eventually(
      () => jobs(setup),
      (j) => j.length === 1,
    );
    await setup.displays.tickOnce();
    await eventually(
      () => jobs(setup),
      (j) => j[0]?.status === 'acked',
    );
    expect(commandsFor(setup)).toHaveLength(1);
    expect(commandsFor(setup)[0]).toMatchObject({ fPort: 7, data: Buffer.from([0xa2]) });

    // free, then occupied again before the tick: the free job is superseded and "occupied" (A2) is what the
    // device already shows, confirmed minutes ago — skipped, and the display command counts as confirmed.
    await sendChange(setup, 'free', t0 + 1_000);
    await sendChange(setup, 'occupied', t0 + 2_000);
    await eventually(
      () => displayState(setup),
      (s) => s?.commandSeq === 3,
    );
    await setup.displays.tickOnce();
    await settle();
    expect(commandsFor(setup)).toHaveLength(1);
    expect((await jobs(setup)).map((j) => [j.status, j.payload])).toEqual([
      ['acked', 'a2'],
      ['superseded', 'a1'],
    ]);
    expect((await displayState(setup))?.lastCommand).toMatchObject({ kind: 'occupied', confirmed: true });
  });
});
