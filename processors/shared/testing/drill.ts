import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Producer } from 'kafkajs';
import type { MqttClient } from 'mqtt';
import { parseCommandDown, type CommandDown } from '../../../ingest/simulator/chirpstack-sim.js';
import type { Config } from '../../../lib/config.js';
import type { Pool } from '../../../lib/db/pool.js';
import { registerValueSchema, type AvroSerde } from '../../../lib/kafka/avro.js';
import { randomDevEui } from '../../../lib/testing/fixtures.js';
import { createTestTopic } from '../../../lib/testing/kafka-control.js';
import type { DownlinkOutcomeRecord, UplinkRecord } from '../../../schemas/avro/records.js';
import { readAvroSchema } from '../../../schemas/catalog.js';
import {
  defaultDisplayPolicy,
  initialDisplayState,
  reduceDisplay,
  type DisplayKind,
  type DisplayState,
} from '../../display/reduce.js';
import { encodeDisplay } from '../../downlink/encoders.js';
import { defaultOccupancyPolicy, initialSpaceState, reduceOccupancy } from '../../occupancy/reduce.js';
import { initialRollupState, reduceRollups, type RollupState } from '../../rollups/reduce.js';
import { stableId } from '../stable-id.js';
import { mulberry32 } from './random.js';

/**
 * Fault drills on the real stack: one tenant with `spaces` spaces, each with a sensor and a Heltec display
 * beside it, its own topics and consumer groups; a noisy uplink stream; the reference the pure reducers compute
 * from that stream; the processors service (processors/main.ts) as a real child process; a simulated ChirpStack
 * that answers every `command/down` with a txack; and what the stack holds afterwards, for exact comparison.
 */

/** An unconfirmed display command is re-sent after this long: longer than any drill, so the reference holds. */
export const drillConfirmTimeoutMs = 3_600_000;

export interface DrillDevice {
  spaceId: string;
  sensorEui: string;
  displayEui: string;
  /** The gateway the simulated ChirpStack reports in txacks (one per display: no shared 30/min bucket). */
  gatewayId: string;
}

export interface DrillWorld {
  run: string;
  tenantId: string;
  siteId: string;
  applicationId: string;
  devices: DrillDevice[];
  topics: Config['topics'] & { livenessAlerts: string; reservationEvents: string };
  groups: {
    occupancy: string;
    display: string;
    outcomes: string;
    rollups: string;
    rollupsHealth: string;
    liveness: string;
  };
  /** Every uplink produced so far, in production order. */
  sent: UplinkRecord[];
  fCnt: Map<string, number>;
  time: number;
}

export async function createDrillWorld(
  admin: Pool,
  controlPort: number,
  spaces: number,
): Promise<DrillWorld> {
  const run = randomUUID().slice(0, 8);
  const { rows } = await admin.query<{ id: string }>(
    'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
    [`drill-${run}`],
  );
  const tenantId = rows[0]!.id;
  const applicationId = randomUUID();
  // A site, so that the rollups route the spaces' changes and the sensors' uplinks (device health) somewhere.
  const site = await admin.query<{ id: string }>(
    'INSERT INTO sites (tenant_id, name) VALUES ($1, $2) RETURNING id',
    [tenantId, 'drill'],
  );
  await admin.query(
    'INSERT INTO chirpstack_applications (tenant_id, application_id, name) VALUES ($1, $2, $3)',
    [tenantId, applicationId, 'drill'],
  );
  const devices: DrillDevice[] = [];
  for (let i = 0; i < spaces; i++) {
    const space = await admin.query<{ id: string }>(
      'INSERT INTO spaces (tenant_id, code, name, site_id) VALUES ($1, $2, $2, $3) RETURNING id',
      [tenantId, `DR-${i}`, site.rows[0]!.id],
    );
    const spaceId = space.rows[0]!.id;
    const device = {
      spaceId,
      sensorEui: randomDevEui(),
      displayEui: randomDevEui(),
      gatewayId: randomDevEui(),
    };
    await admin.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')",
      [tenantId, device.sensorEui, spaceId],
    );
    await admin.query(
      `INSERT INTO display_devices (tenant_id, dev_eui, space_id, device_type, f_port, confirmed_downlinks)
       VALUES ($1, $2, $3, 'heltec-1byte', 1, false)`,
      [tenantId, device.displayEui, spaceId],
    );
    devices.push(device);
  }
  const topics = {
    uplinks: `test-drill-uplinks-${run}`,
    deadLetter: `test-drill-dlq-${run}`,
    joins: `test-drill-joins-${run}`,
    deviceStatus: `test-drill-status-${run}`,
    deviceLocations: `test-drill-locations-${run}`,
    downlinkOutcomes: `test-drill-outcomes-${run}`,
    orphanUplinks: `test-drill-orphans-${run}`,
    occupancyChanges: `test-drill-changes-${run}`,
    livenessAlerts: `test-drill-alerts-${run}`,
    reservationEvents: `test-drill-reservations-${run}`,
  };
  for (const [name, topic] of Object.entries(topics))
    await createTestTopic(controlPort, topic, name === 'uplinks' || name === 'occupancyChanges' ? 3 : 2);
  const groups = {
    occupancy: `drill-occ-${run}`,
    display: `drill-disp-${run}`,
    outcomes: `drill-outcomes-${run}`,
    rollups: `drill-rollups-${run}`,
    rollupsHealth: `drill-health-${run}`,
    liveness: `drill-liveness-${run}`,
  };
  // Event times end near the wall clock: display commands carry them, and the tick compares with the clock.
  return {
    run,
    tenantId,
    siteId: site.rows[0]!.id,
    applicationId,
    devices,
    topics,
    groups,
    sent: [],
    fCnt: new Map(),
    time: 0,
  };
}

/**
 * `count` readings, round robin over the sensors, one round per second of event time, from a seeded source:
 * a space keeps its value with probability 0.65 per reading (so single-reading blips that the debounce must
 * swallow are common), and every 40th reading is followed by a redelivered copy (same frame, new event id),
 * which the reducer must drop as a duplicate.
 */
export function generateUplinks(world: DrillWorld, count: number, seed: number): UplinkRecord[] {
  const random = mulberry32(seed);
  if (world.time === 0) world.time = Date.now() - Math.ceil(count / world.devices.length) * 1_000 - 60_000;
  const value = new Map<string, boolean>();
  const records: UplinkRecord[] = [];
  for (let i = 0; i < count; i++) {
    const device = world.devices[i % world.devices.length]!;
    if (i % world.devices.length === 0) world.time += 1_000;
    const fCnt = (world.fCnt.get(device.sensorEui) ?? 0) + 1;
    world.fCnt.set(device.sensorEui, fCnt);
    const previous = value.get(device.sensorEui) ?? random() < 0.5;
    const occupied = random() < 0.65 ? previous : !previous;
    value.set(device.sensorEui, occupied);
    const record: UplinkRecord = {
      eventId: randomUUID(),
      tenantId: world.tenantId,
      devEui: device.sensorEui,
      spaceId: device.spaceId,
      time: world.time,
      receivedAt: world.time + 40,
      source: 'MQTT',
      applicationId: world.applicationId,
      fCnt,
      fPort: 102,
      codec: 'browan-tbms100',
      occupied,
      batteryVolts: 3.6,
      temperatureC: 20,
      rssi: -90,
      snr: 7,
      gatewayIds: [device.gatewayId],
      payload: Buffer.from([occupied ? 1 : 0]),
      frameType: null,
      batteryStatus: null,
    };
    records.push(record);
    if (i % 40 === 39) records.push({ ...record, eventId: randomUUID(), receivedAt: record.receivedAt + 5 });
  }
  return records;
}

/** Produces `records` keyed by DevEUI in slices of `slice`, acks from all replicas; records them as sent. */
export async function produceUplinks(
  world: DrillWorld,
  producer: Producer,
  serde: AvroSerde<UplinkRecord>,
  records: readonly UplinkRecord[],
  slice = 100,
): Promise<void> {
  for (let i = 0; i < records.length; i += slice) {
    const part = records.slice(i, i + slice);
    await producer.send({
      topic: world.topics.uplinks,
      acks: -1,
      messages: await Promise.all(part.map(async (r) => ({ key: r.devEui, value: await serde.encode(r) }))),
    });
    world.sent.push(...part);
  }
}

export async function uplinkSerde(
  registry: SchemaRegistry,
  world: DrillWorld,
): Promise<AvroSerde<UplinkRecord>> {
  return registerValueSchema<UplinkRecord>(registry, world.topics.uplinks, readAvroSchema('uplink'));
}

export interface ReferenceCommand {
  commandId: string;
  kind: DisplayKind;
  /** The downlink job the command becomes (its first send; drills never re-send, see drillConfirmTimeoutMs). */
  jobId: string;
  payloadHex: string;
}

export interface Reference {
  /** Occupancy changes by event id. */
  changes: Map<string, { spaceId: string; state: string }>;
  /** The same changes in the order the reducer emitted them, as the rollups see them. */
  changeList: Array<{ eventId: string; spaceId: string; to: 'free' | 'occupied'; at: number }>;
  /** Display commands per display DevEUI, in order. */
  commands: Map<string, ReferenceCommand[]>;
  /** Device health per `${devEui}/${size}/${bucket start ms}`: uplinks counted (distinct event ids), last seen. */
  health: Map<string, { uplinks: number; lastSeen: number }>;
}

/** What the input must produce, by the pure reducers: occupancy (default policy), then each space's display. */
export function referenceOf(world: DrillWorld): Reference {
  const spaces = new Map<string, typeof initialSpaceState>();
  const changes = new Map<string, { spaceId: string; state: string }>();
  const changeList: Reference['changeList'] = [];
  const displays = new Map<string, DisplayState>();
  const commands = new Map<string, ReferenceCommand[]>();
  const bySpace = new Map(world.devices.map((d) => [d.spaceId, d]));
  const policy = { ...defaultDisplayPolicy, confirmTimeoutMs: drillConfirmTimeoutMs, requireAck: false };
  const health = new Map<string, { uplinks: number; lastSeen: number }>();
  for (const uplink of world.sent) {
    for (const [size, ms] of [['5m', 300_000] as const, ['1h', 3_600_000] as const]) {
      const key = `${uplink.devEui}/${size}/${Math.floor(uplink.time / ms) * ms}`;
      const h = health.get(key);
      health.set(key, { uplinks: (h?.uplinks ?? 0) + 1, lastSeen: Math.max(h?.lastSeen ?? 0, uplink.time) });
    }
    const result = reduceOccupancy(
      spaces.get(uplink.spaceId!) ?? initialSpaceState,
      { type: 'uplink', uplink },
      defaultOccupancyPolicy,
    );
    spaces.set(uplink.spaceId!, result.state);
    for (const e of result.effects) {
      if (e.type !== 'occupancy-changed') continue;
      changes.set(e.eventId, { spaceId: e.spaceId, state: e.to });
      if (e.to !== 'free' && e.to !== 'occupied') continue;
      changeList.push({ eventId: e.eventId, spaceId: e.spaceId, to: e.to, at: e.at });
      const device = bySpace.get(e.spaceId)!;
      const display =
        displays.get(device.displayEui) ??
        initialDisplayState(world.tenantId, device.displayEui, device.spaceId);
      const shown = reduceDisplay(
        display,
        { type: 'sensor-changed', eventId: e.eventId, at: e.confirmedAt, state: e.to, stale: false },
        policy,
      );
      displays.set(device.displayEui, shown.state);
      const list = commands.get(device.displayEui) ?? [];
      for (const c of shown.effects)
        list.push({
          commandId: c.commandId,
          kind: c.kind,
          jobId: stableId('downlink-job', world.tenantId, device.displayEui, `${c.commandId}:${c.resend}`),
          payloadHex: encodeDisplay('heltec-1byte', c.kind, c.look).payloadHex,
        });
      commands.set(device.displayEui, list);
    }
  }
  return { changes, changeList, commands, health };
}

/** A space's occupancy rollup row as compared: exact integers (ms, counts). */
export interface SpaceRollup {
  occupiedMs: number;
  observedMs: number;
  arrivals: number;
  dwellCount: number;
}

/**
 * The space rollup rows (`${spaceId}/${size}/${bucket start ms}`) the rollups reducer computes from the
 * reference changes, with the site's watermark at `watermark`: the rows of the buckets it closed. Rows of closed
 * buckets do not depend on the order the changes came in, only on the changes and the watermark.
 */
export function spaceRollupsOf(
  world: DrillWorld,
  reference: Reference,
  watermark: number,
): Map<string, SpaceRollup> {
  let state: RollupState = initialRollupState(world.tenantId, world.siteId);
  const rows = new Map<string, SpaceRollup>();
  const events = [
    ...reference.changeList.map((c) => ({ type: 'occupancy-changed' as const, ...c })),
    { type: 'tick' as const, now: watermark },
  ];
  for (const event of events) {
    const result = reduceRollups(state, event);
    state = result.state;
    for (const e of result.effects)
      if (e.type === 'upsert-space-occupancy')
        rows.set(`${e.spaceId}/${e.size}/${e.bucketStart}`, {
          occupiedMs: e.row.occupiedMs,
          observedMs: e.row.observedMs,
          arrivals: e.row.turnover,
          dwellCount: e.row.periodsEnded,
        });
  }
  return rows;
}

// ------------------------------------------------------------------------------------- simulated ChirpStack

export interface ChirpStackSim {
  /** Every `command/down` for the world's displays, in arrival order. */
  commands: CommandDown[];
  stop(): Promise<void>;
}

/**
 * Answers each `command/down` of the world's application with a txack on the outcome topic, as ChirpStack's
 * event → ingest would; a send that fails (broker down) is retried until it succeeds, answers stay in order.
 */
export async function startChirpStackSim(
  world: DrillWorld,
  mqtt: MqttClient,
  kafka: Kafka,
  registry: SchemaRegistry,
): Promise<ChirpStackSim> {
  const serde = await registerValueSchema<DownlinkOutcomeRecord>(
    registry,
    world.topics.downlinkOutcomes,
    readAvroSchema('downlink-outcome'),
  );
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 2 } });
  await producer.connect();
  const gateways = new Map(world.devices.map((d) => [d.displayEui.toLowerCase(), d.gatewayId]));
  const commands: CommandDown[] = [];
  let running = true;
  let answering = Promise.resolve();
  const topic = `application/${world.applicationId}/device/+/command/down`;
  const onMessage = (t: string, body: Buffer) => {
    if (!t.startsWith(`application/${world.applicationId}/`)) return;
    const command = parseCommandDown(t, body);
    commands.push(command);
    const record: DownlinkOutcomeRecord = {
      eventId: randomUUID(),
      tenantId: world.tenantId,
      devEui: command.devEui.toUpperCase(),
      time: Date.now(),
      receivedAt: Date.now(),
      source: 'MQTT',
      applicationId: command.applicationId,
      queueItemId: command.id,
      fCntDown: commands.length,
      kind: 'TXACK',
      acknowledged: null,
      downlinkId: commands.length,
      gatewayId: gateways.get(command.devEui) ?? null,
    };
    answering = answering.then(async () => {
      const value = await serde.encode(record);
      while (running) {
        try {
          await producer.send({
            topic: world.topics.downlinkOutcomes,
            acks: -1,
            messages: [{ key: record.devEui, value }],
          });
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    });
  };
  mqtt.on('message', onMessage);
  await mqtt.subscribeAsync(topic, { qos: 1 });
  return {
    commands,
    async stop() {
      running = false;
      await answering;
      mqtt.off('message', onMessage);
      await mqtt.unsubscribeAsync(topic);
      await producer.disconnect();
    },
  };
}

// ------------------------------------------------------------------------------------ the processors process

export interface ProcessorsChild {
  pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** SIGKILL: no drain, no commit, no goodbye. */
  kill(): Promise<void>;
  /** SIGTERM: the service drains and exits. */
  stop(): Promise<number | null>;
  /** `processor_records_processed_total` by processor, from the child's /metrics (0 when absent). */
  processed(): Promise<Map<string, number>>;
  /** The sum of `processor_errors_total` (every processor, code and handling), from the child's /metrics. */
  errors(): Promise<number>;
  /** The child's log so far (JSON lines, warn and above, kafkajs' connection errors included). */
  logText(): Promise<string>;
}

/**
 * processors/main.ts through tsx, configured by environment like a deployment, on the world's topics and
 * groups; its output goes to `$PARKING_DATA_DIR/log/drill-<run>-<name>.log`. Resolves once /ready answers 200.
 */
export async function spawnProcessors(world: DrillWorld, name: string): Promise<ProcessorsChild> {
  const port = await freePort();
  const logDir = join(process.env.PARKING_DATA_DIR ?? '.data', 'log');
  await mkdir(logDir, { recursive: true });
  const logPath = join(logDir, `drill-${world.run}-${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const t = world.topics;
  const g = world.groups;
  const child = spawn(process.execPath, ['--import', 'tsx', 'processors/main.ts'], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      PROCESSORS_HTTP_PORT: String(port),
      TOPIC_UPLINKS: t.uplinks,
      TOPIC_DEAD_LETTER: t.deadLetter,
      TOPIC_JOINS: t.joins,
      TOPIC_DEVICE_STATUS: t.deviceStatus,
      TOPIC_DOWNLINK_OUTCOMES: t.downlinkOutcomes,
      TOPIC_ORPHAN_UPLINKS: t.orphanUplinks,
      TOPIC_OCCUPANCY_CHANGES: t.occupancyChanges,
      TOPIC_LIVENESS_ALERTS: t.livenessAlerts,
      TOPIC_RESERVATION_EVENTS: t.reservationEvents,
      OCCUPANCY_GROUP_ID: g.occupancy,
      DISPLAY_GROUP_ID: g.display,
      DOWNLINK_OUTCOMES_GROUP_ID: g.outcomes,
      ROLLUPS_GROUP_ID: g.rollups,
      ROLLUPS_HEALTH_GROUP_ID: g.rollupsHealth,
      LIVENESS_GROUP_ID: g.liveness,
      MQTT_DOWNLINK_CLIENT_ID: `drill-downlinks-${world.run}-${name}`,
      DISPLAY_TICK_MS: '100',
      DISPLAY_CONFIRM_TIMEOUT_MS: String(drillConfirmTimeoutMs),
      // A send waits this long for its txack before a retry: longer than a drill, so "one send per job" holds.
      DOWNLINK_BASE_BACKOFF_MS: '600000',
      ROLLUPS_TICK_MS: '3600000',
      LIVENESS_TICK_MS: '3600000',
      RESERVATIONS_TICK_MS: '3600000',
      SHUTDOWN_GRACE_MS: '15000',
    },
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => log.end());
  const deadline = Date.now() + 90_000;
  let dead = false;
  void exited.then(() => (dead = true));
  for (;;) {
    if (dead) throw new Error(`processors (${name}) exited during start; see ${log.path as string}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`processors (${name}) not ready within 90 s; see ${log.path as string}`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    pid: child.pid!,
    exited,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async processed() {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const counts = new Map<string, number>();
      for (const m of text.matchAll(/^processor_records_processed_total\{processor="([^"]+)"\} (\d+)$/gm))
        counts.set(m[1]!, Number(m[2]));
      return counts;
    },
    async errors() {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      let sum = 0;
      for (const m of text.matchAll(/^processor_errors_total\{[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
      return sum;
    },
    logText: () => readFile(logPath, 'utf8'),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

// ------------------------------------------------------------------------------------------- what happened

export interface Observed {
  /** occupancy_changes rows of the tenant. */
  changes: Array<{ event_id: string; state: string }>;
  displays: Map<string, { state: DisplayState; lastConfirmedPayload: string | null }>;
  jobs: Array<{ id: string; dev_eui: string; status: string; attempts: number; payload: string }>;
  /** downlink_outcomes 'enqueued' rows (one per send decision) per job id. */
  enqueued: Map<string, number>;
  /** device_health_5m and _1h rows of the sensors, keyed like Reference.health. */
  health: Map<string, { uplinks: number; lastSeen: number }>;
  /** space_occupancy_5m and _1h rows of the spaces, keyed like spaceRollupsOf. */
  spaceRollups: Map<string, SpaceRollup>;
  /** The site's rollup watermark (rollup_states), null before any. */
  watermark: number | null;
}

export async function observe(admin: Pool, world: DrillWorld): Promise<Observed> {
  const changes = await admin.query<{ event_id: string; state: string }>(
    'SELECT event_id, state FROM occupancy_changes WHERE tenant_id = $1',
    [world.tenantId],
  );
  const states = await admin.query<{ dev_eui: string; state: DisplayState; payload: string | null }>(
    `SELECT dev_eui, state, encode(last_confirmed_payload, 'hex') AS payload FROM display_states
      WHERE tenant_id = $1`,
    [world.tenantId],
  );
  const jobs = await admin.query<{
    id: string;
    dev_eui: string;
    status: string;
    attempts: number;
    payload: string;
  }>(
    `SELECT id, dev_eui, status, attempts, encode(payload, 'hex') AS payload FROM downlink_jobs
      WHERE tenant_id = $1 ORDER BY created_at, id`,
    [world.tenantId],
  );
  const enqueued = await admin.query<{ job_id: string; n: number }>(
    `SELECT job_id, count(*)::int AS n FROM downlink_outcomes WHERE tenant_id = $1 AND outcome = 'enqueued'
      GROUP BY job_id`,
    [world.tenantId],
  );
  const health = new Map<string, { uplinks: number; lastSeen: number }>();
  for (const size of ['5m', '1h'] as const) {
    const { rows } = await admin.query<{
      dev_eui: string;
      bucket: Date;
      uplinks: number;
      last_seen_at: Date;
    }>(`SELECT dev_eui, bucket, uplinks, last_seen_at FROM device_health_${size} WHERE tenant_id = $1`, [
      world.tenantId,
    ]);
    for (const r of rows)
      health.set(`${r.dev_eui}/${size}/${r.bucket.getTime()}`, {
        uplinks: r.uplinks,
        lastSeen: r.last_seen_at.getTime(),
      });
  }
  const spaceRollups = new Map<string, SpaceRollup>();
  for (const size of ['5m', '1h'] as const) {
    const { rows } = await admin.query<{
      space_id: string;
      bucket: Date;
      occupied_seconds: number;
      observed_seconds: number | null;
      arrivals: number;
      dwell_count: number;
    }>(
      `SELECT space_id, bucket, occupied_seconds, observed_seconds, arrivals, dwell_count
         FROM space_occupancy_${size} WHERE tenant_id = $1`,
      [world.tenantId],
    );
    for (const r of rows)
      spaceRollups.set(`${r.space_id}/${size}/${r.bucket.getTime()}`, {
        occupiedMs: Math.round(r.occupied_seconds * 1000),
        observedMs: Math.round((r.observed_seconds ?? 0) * 1000),
        arrivals: r.arrivals,
        dwellCount: r.dwell_count,
      });
  }
  const site = await admin.query<{ watermark: number | null }>(
    `SELECT (state->>'watermark')::float8 AS watermark FROM rollup_states WHERE tenant_id = $1 AND site_id = $2`,
    [world.tenantId, world.siteId],
  );
  return {
    health,
    spaceRollups,
    watermark: site.rows[0]?.watermark ?? null,
    changes: changes.rows,
    displays: new Map(
      states.rows.map((r) => [r.dev_eui, { state: r.state, lastConfirmedPayload: r.payload }]),
    ),
    jobs: jobs.rows,
    enqueued: new Map(enqueued.rows.map((r) => [r.job_id, r.n])),
  };
}

/** Sum of the next offsets a group (default: occupancy) stored in PostgreSQL for a topic (default: uplinks). */
export async function storedUplinkOffsets(
  admin: Pool,
  world: DrillWorld,
  groupId = world.groups.occupancy,
  topic = world.topics.uplinks,
): Promise<number> {
  const { rows } = await admin.query<{ n: string | null }>(
    'SELECT sum(next_offset) AS n FROM processor_offsets WHERE group_id = $1 AND topic = $2',
    [groupId, topic],
  );
  return Number(rows[0]!.n ?? 0);
}

/** Sum of the occupancy-change topic's high watermarks (its partitions start at 0). */
export async function changeTopicEnd(kafka: Kafka, world: DrillWorld): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(world.topics.occupancyChanges);
    return ends.reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Done when every uplink is applied (occupancy and device health), every display shows its last reference command confirmed, no job is
 * pending and the outbox of the tenant is empty. Errors (the database being restarted) count as "not yet".
 */
export async function settled(admin: Pool, world: DrillWorld, reference: Reference): Promise<string> {
  try {
    const applied = await storedUplinkOffsets(admin, world);
    if (applied !== world.sent.length) return `uplinks applied ${applied}/${world.sent.length}`;
    const health = await storedUplinkOffsets(admin, world, world.groups.rollupsHealth);
    if (health !== world.sent.length) return `uplinks in device health ${health}/${world.sent.length}`;
    const o = await observe(admin, world);
    const pending = o.jobs.filter((j) => j.status === 'queued' || j.status === 'sent').length;
    if (pending > 0) return `${pending} jobs pending`;
    for (const [displayEui, commands] of reference.commands) {
      const last = o.displays.get(displayEui)?.state.lastCommand;
      if (last?.commandId !== commands.at(-1)?.commandId || !last?.confirmed)
        return `display ${displayEui} at ${last?.commandId ?? 'nothing'} confirmed=${String(last?.confirmed)}`;
    }
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL',
      [world.tenantId],
    );
    if (rows[0]!.n > 0) return `${rows[0]!.n} outbox rows unsent`;
    return 'settled';
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

export interface ChangeTopicRecord {
  /** The `event-id` header. */
  id: string;
  partition: number;
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, Buffer>;
}

/**
 * Every record of the occupancy-change topic, read from the beginning up to the high watermarks taken first,
 * in partition order.
 */
/** How many records the change topic holds now (all partitions). */
export async function changeTopicSize(kafka: Kafka, world: DrillWorld): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(world.topics.occupancyChanges);
    return ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

export async function readChangeTopic(
  kafka: Kafka,
  world: DrillWorld,
  timeoutMs = 30_000,
): Promise<ChangeTopicRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(world.topics.occupancyChanges).finally(() => admin.disconnect());
  const total = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  const consumer = kafka.consumer({ groupId: `drill-reader-${world.run}-${randomUUID().slice(0, 4)}` });
  const seen: ChangeTopicRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: world.topics.occupancyChanges, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(message.headers ?? {}))
          if (Buffer.isBuffer(v)) headers[k] = v;
          else if (typeof v === 'string') headers[k] = Buffer.from(v);
        seen.push({
          id: headers['event-id']?.toString() ?? '',
          partition,
          key: message.key,
          value: message.value ?? Buffer.alloc(0),
          headers,
        });
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (seen.length < total && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    if (seen.length < total) throw new Error(`read ${seen.length} of ${total} change records`);
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * What the outbox relay does when it dies between the broker's ack and marking the rows sent: the last `count`
 * records of each partition are published again, byte for byte (same key, value and `event-id`), after them.
 * Returns how many were repeated.
 */
export async function repeatChangeTail(
  kafka: Kafka,
  producer: Producer,
  world: DrillWorld,
  count: number,
): Promise<number> {
  const records = await readChangeTopic(kafka, world);
  const partitions = [...new Set(records.map((r) => r.partition))];
  let repeated = 0;
  for (const partition of partitions) {
    const tail = records.filter((r) => r.partition === partition).slice(-count);
    await producer.send({
      topic: world.topics.occupancyChanges,
      acks: -1,
      messages: tail.map((r) => ({ partition, key: r.key, value: r.value, headers: r.headers })),
    });
    repeated += tail.length;
  }
  return repeated;
}
