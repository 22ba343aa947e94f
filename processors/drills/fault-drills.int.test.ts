import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Kafka, Producer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry, type AvroSerde } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { eventually } from '../../lib/testing/fixtures.js';
import { kafkaControl } from '../../lib/testing/kafka-control.js';
import type { UplinkRecord } from '../../schemas/avro/records.js';
import {
  createDrillWorld,
  generateUplinks,
  observe,
  produceUplinks,
  readChangeTopic,
  referenceOf,
  repeatChangeTail,
  changeTopicSize,
  settled,
  spaceRollupsOf,
  changeTopicEnd,
  spawnProcessors,
  startChirpStackSim,
  storedUplinkOffsets,
  uplinkSerde,
  type ChirpStackSim,
  type DrillWorld,
  type ProcessorsChild,
} from '../shared/testing/drill.js';

/**
 * Fault drills (issue #6, "Done when"): the processors service runs as a real child process (processors/main.ts
 * configured by environment) against the local stack while a noisy uplink stream flows, and a fault hits it
 * mid-stream: SIGKILL and restart, PostgreSQL stopped and started, the Kafka broker down and up, a second
 * instance joining and the first leaving (two rebalances of every consumer group). A simulated ChirpStack
 * txacks every `command/down`. Afterwards the stack must hold exactly what the pure reducers compute from the
 * input (processors/shared/testing/drill.ts, referenceOf):
 * - occupancy_changes: exactly the reference changes (ids and states), no more, no fewer;
 * - the occupancy-change topic: exactly the reference ids; a repeat (the outbox relay is at least once) only as
 *   a byte-identical copy with the same event id;
 * - display commands: every display numbered exactly as many commands as the reference (commandSeq) and shows
 *   the reference's last one, confirmed, with its payload as the device's last confirmed payload;
 * - downlinks: every job is one of the reference's (one per display command), none pending, queued twice or
 *   failed, each sent at most once (one 'enqueued' decision, attempts <= 1); on MQTT every sent job arrives,
 *   nothing else does, one device's commands arrive in reference order, and a repeated message (the MQTT relay
 *   is at least once) has the same queue item id and payload;
 * - rollups: the sensors' device health rows (5-minute and hourly) count every uplink exactly once.
 */
const config = loadConfig();
const logger = createLogger('drills-int', 'fatal');
const registry = createSchemaRegistry(config.schemaRegistry);
const exec = promisify(execFile);
const uplinksPerDrill = 2_400;
const spaces = 8;
const settleTimeoutMs = 90_000;

let admin: Pool;
let kafka: Kafka;
let producer: Producer;
let chirpstackMqtt: MqttClient;
let children: ProcessorsChild[] = [];
let sim: ChirpStackSim | undefined;

beforeAll(async () => {
  admin = createPool(config.postgres.migrateUrl, 'drills-int', 4);
  // The database drill restarts PostgreSQL: idle connections die, and the pool must not crash the test.
  admin.on('error', () => undefined);
  kafka = createKafka(config.kafka, logger, 'drills-int');
  producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  await producer.connect();
  chirpstackMqtt = await mqtt.connectAsync(config.mqtt.url, { clientId: `drill-chirpstack-${process.pid}` });
});

afterEach(async () => {
  // A drill that failed half-way must leave the stack whole for the next one.
  await kafkaControl(config.kafka.controlPort, 'up 1').catch(() => undefined);
  await postgres('up');
  for (const child of children) await child.kill();
  children = [];
  await sim?.stop();
  sim = undefined;
});

afterAll(async () => {
  await chirpstackMqtt?.endAsync();
  await producer?.disconnect();
  await admin?.end();
});

/** This slot's PostgreSQL, through the script the stack uses (pg_ctl stop -m fast / start). */
async function postgres(action: 'up' | 'down'): Promise<void> {
  await exec('bash', ['infra/services/postgres.sh', action], { env: process.env });
}

interface Drill {
  world: DrillWorld;
  serde: AvroSerde<UplinkRecord>;
  input: UplinkRecord[];
}

async function newDrill(seed: number): Promise<Drill> {
  const world = await createDrillWorld(admin, config.kafka.controlPort, spaces);
  sim = await startChirpStackSim(world, chirpstackMqtt, kafka, registry);
  return {
    world,
    serde: await uplinkSerde(registry, world),
    input: generateUplinks(world, uplinksPerDrill, seed),
  };
}

async function start(drill: Drill, name: string): Promise<ProcessorsChild> {
  const child = await spawnProcessors(drill.world, name);
  children.push(child);
  return child;
}

/** Produces the input from `from` to `to` (fractions of it). */
async function produce(drill: Drill, from: number, to: number): Promise<void> {
  const n = drill.input.length;
  await produceUplinks(
    drill.world,
    producer,
    drill.serde,
    drill.input.slice(Math.round(from * n), Math.round(to * n)),
  );
}

async function appliedAtLeast(drill: Drill, n: number): Promise<void> {
  await eventually(
    () => storedUplinkOffsets(admin, drill.world),
    (applied) => applied >= n,
    { timeoutMs: 60_000, intervalMs: 20 },
  );
}

async function awaitSettled(drill: Drill): Promise<void> {
  const reference = referenceOf(drill.world);
  await eventually(
    () => settled(admin, drill.world, reference),
    (s) => s === 'settled',
    { timeoutMs: settleTimeoutMs, intervalMs: 200 },
  );
  // The rollups read the whole change topic, repeats included.
  const end = await changeTopicEnd(kafka, drill.world);
  await eventually(
    () =>
      storedUplinkOffsets(
        admin,
        drill.world,
        drill.world.groups.rollups,
        drill.world.topics.occupancyChanges,
      ),
    (n) => n === end,
    { timeoutMs: settleTimeoutMs, intervalMs: 200 },
  );
}

/** The exact comparison described at the top; returns what the drill observed, for the log. */
async function expectExactReference(drill: Drill): Promise<Record<string, number>> {
  const { world } = drill;
  expect(world.sent).toHaveLength(drill.input.length);
  const reference = referenceOf(world);
  const observed = await observe(admin, world);

  // Occupancy changes in the database: exactly the reference set.
  expect(observed.changes).toHaveLength(reference.changes.size);
  expect(new Map(observed.changes.map((c) => [c.event_id, c.state]))).toEqual(
    new Map([...reference.changes].map(([id, c]) => [id, c.state])),
  );

  // The change topic: the reference ids; a repeat only as the identical record.
  const records = await readChangeTopic(kafka, world);
  expect(new Set(records.map((r) => r.id))).toEqual(new Set(reference.changes.keys()));
  const firstValue = new Map<string, string>();
  for (const r of records) {
    const value = r.value.toString('hex');
    if (!firstValue.has(r.id)) firstValue.set(r.id, value);
    expect(value).toBe(firstValue.get(r.id));
  }

  // Display commands: none lost, none doubled, the last one shown and confirmed.
  let commands = 0;
  for (const device of world.devices) {
    const expected = reference.commands.get(device.displayEui) ?? [];
    commands += expected.length;
    const display = observed.displays.get(device.displayEui);
    expect(display?.state.commandSeq).toBe(expected.length);
    const last = expected.at(-1)!;
    expect(display?.state.lastCommand).toMatchObject({
      commandId: last.commandId,
      kind: last.kind,
      confirmed: true,
    });
    expect(display?.lastConfirmedPayload).toBe(last.payloadHex);
  }

  // Downlink jobs: reference jobs only, terminal, sent at most once.
  const referenceJobs = new Map(
    [...reference.commands].flatMap(([devEui, list]) =>
      list.map((c, index) => [c.jobId, { ...c, devEui, index }]),
    ),
  );
  for (const job of observed.jobs) {
    const ref = referenceJobs.get(job.id);
    expect(ref, `job ${job.id} is not a reference command's`).toBeDefined();
    expect(job.dev_eui).toBe(ref!.devEui);
    expect(job.payload).toBe(ref!.payloadHex);
    expect(['acked', 'superseded']).toContain(job.status);
    expect(job.attempts).toBeLessThanOrEqual(1);
    expect(observed.enqueued.get(job.id) ?? 0).toBe(job.attempts);
  }

  // MQTT command/down: exactly the sent jobs, in reference order per device; repeats identical.
  const jobs = new Map(observed.jobs.map((j) => [j.id, j]));
  const sentJobs = new Set(observed.jobs.filter((j) => j.attempts === 1).map((j) => j.id));
  const received = sim!.commands;
  expect(new Set(received.map((c) => c.id))).toEqual(sentJobs);
  const lastIndex = new Map<string, number>();
  const firstData = new Map<string, string>();
  for (const c of received) {
    const ref = referenceJobs.get(c.id)!;
    expect(c.devEui).toBe(ref.devEui.toLowerCase());
    expect(c.data.toString('hex')).toBe(jobs.get(c.id)!.payload);
    if (firstData.has(c.id)) {
      expect(c.data.toString('hex')).toBe(firstData.get(c.id));
      continue;
    }
    firstData.set(c.id, c.data.toString('hex'));
    expect(ref.index).toBeGreaterThan(lastIndex.get(ref.devEui) ?? -1);
    lastIndex.set(ref.devEui, ref.index);
  }
  // Rollups: the sensors' device health, per 5-minute and hourly bucket, counts every uplink exactly once;
  // the spaces' occupancy rows are those of the reference changes up to the site's watermark.
  expect(observed.health).toEqual(reference.health);
  expect(observed.watermark).not.toBeNull();
  expect(observed.spaceRollups).toEqual(spaceRollupsOf(world, reference, observed.watermark!));

  // The drill must have something to lose: changes on every space, commands coalesced and sent.
  expect(reference.changes.size).toBeGreaterThan(world.devices.length * 10);
  expect(sentJobs.size).toBeGreaterThanOrEqual(world.devices.length);
  return {
    uplinks: world.sent.length,
    changes: reference.changes.size,
    changeRecords: records.length,
    displayCommands: commands,
    jobs: observed.jobs.length,
    sent: sentJobs.size,
    mqttMessages: received.length,
    healthRows: observed.health.size,
    spaceRollupRows: observed.spaceRollups.size,
  };
}

async function feltBy(child: ProcessorsChild, errorsBefore: number): Promise<void> {
  await eventually(
    () => child.errors(),
    (n) => n > errorsBefore,
    { timeoutMs: 45_000, intervalMs: 100 },
  );
}

function stillRunning(child: ProcessorsChild): Promise<boolean> {
  return Promise.race([
    child.exited.then(() => false),
    new Promise<boolean>((r) => setImmediate(() => r(true))),
  ]);
}

describe('fault drills: 0 lost and 0 duplicated occupancy changes, display commands and downlinks', () => {
  it('SIGKILL mid-stream, then a restart, resumes from the offsets in PostgreSQL', async () => {
    const drill = await newDrill(11);
    const first = await start(drill, 'a');
    await produce(drill, 0, 0.4);
    await appliedAtLeast(drill, 300);
    // Some changes on the topic too (the relay publishes after the commit), so the repeated tail is never empty.
    await eventually(
      () => changeTopicSize(kafka, drill.world),
      (n) => n > 0,
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    await first.kill();
    // The kill may land between the outbox relay's publish and its mark, or not: to not depend on luck, the
    // tail of the change topic is published again as that relay would, and the consumers must drop it.
    expect(await repeatChangeTail(kafka, producer, drill.world, 4)).toBeGreaterThan(0);
    await produce(drill, 0.4, 0.7);
    const second = await start(drill, 'b');
    await produce(drill, 0.7, 1);
    await awaitSettled(drill);
    const counts = await expectExactReference(drill);
    expect(await second.stop()).toBe(0);
    console.info('SIGKILL drill', counts);
  }, 180_000);

  it('PostgreSQL stopped and started mid-stream: the processors back off, recover and end exact', async () => {
    const drill = await newDrill(12);
    const child = await start(drill, 'a');
    await produce(drill, 0, 0.4);
    await appliedAtLeast(drill, 300);
    const before = await child.errors();
    await postgres('down');
    await produce(drill, 0.4, 0.7);
    // Down until the processors felt it (their errors counter moved), so the drill never passes by missing it.
    await feltBy(child, before);
    await postgres('up');
    await produce(drill, 0.7, 1);
    await awaitSettled(drill);
    expect(await stillRunning(child)).toBe(true);
    const counts = await expectExactReference(drill);
    expect(await child.stop()).toBe(0);
    console.info('database drill', counts);
  }, 180_000);

  it('the Kafka broker down and up mid-stream: the processors back off, recover and end exact', async () => {
    const drill = await newDrill(13);
    const child = await start(drill, 'a');
    await produce(drill, 0, 0.4);
    await appliedAtLeast(drill, 300);
    const before = await child.errors();
    const logBefore = (await child.logText()).length;
    await kafkaControl(config.kafka.controlPort, 'down 1');
    // Down until the processors felt it: the outbox relay's sends failed past the client's retries, or (when the
    // relay had nothing left to send) their Kafka clients could not reach the broker.
    await eventually(
      async () =>
        (await child.errors()) > before || /ECONNREFUSED/.test((await child.logText()).slice(logBefore)),
      (felt) => felt,
      { timeoutMs: 45_000, intervalMs: 100 },
    );
    await kafkaControl(config.kafka.controlPort, 'up 1');
    await produce(drill, 0.4, 1);
    await awaitSettled(drill);
    expect(await stillRunning(child)).toBe(true);
    const counts = await expectExactReference(drill);
    expect(await child.stop()).toBe(0);
    console.info('broker drill', counts);
  }, 180_000);

  it('a second instance joins mid-stream and the first leaves: every consumer group rebalances twice', async () => {
    const drill = await newDrill(14);
    const a = await start(drill, 'a');
    await produce(drill, 0, 0.3);
    await appliedAtLeast(drill, 300);
    const b = await start(drill, 'b');
    // The stream goes on, one round of readings at a time (each applied, then a 250 ms pause), until the new
    // instance has applied records in every chained group, or the input runs short and the drill fails. On the
    // mock broker a join can take several rebalances: a SyncGroup answered INVALID_REQUEST makes the runtime
    // start a new consumer, and each join of a non-empty group waits out the 10 s rebalance timeout.
    const chained = ['occupancy', 'display', 'downlink-outcomes'];
    const working = async (child: ProcessorsChild) => {
      const processed = await child.processed();
      return chained.every((name) => (processed.get(name) ?? 0) > 0);
    };
    const round = spaces / drill.input.length;
    let produced = 0.3;
    while (!(await working(b)) && produced < 0.85) {
      await produce(drill, produced, produced + round);
      produced += round;
      await appliedAtLeast(drill, drill.world.sent.length);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const child of [a, b]) {
      const processed = await child.processed();
      const idle = chained.filter((name) => !((processed.get(name) ?? 0) > 0));
      expect(idle, JSON.stringify(Object.fromEntries(processed))).toEqual([]);
    }
    await produce(drill, produced, 0.9);
    expect(await a.stop()).toBe(0);
    await produce(drill, 0.9, 1);
    await awaitSettled(drill);
    const counts = await expectExactReference(drill);
    expect(await b.stop()).toBe(0);
    console.info('rebalance drill', counts);
  }, 240_000);
});
