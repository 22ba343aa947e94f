import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import type {
  DeadLetterRecord,
  DownlinkOutcomeRecord,
  OccupancyChangeRecord,
} from '../../schemas/avro/records.js';
import { commandDownMessage } from '../downlink/chirpstack-command.js';
import { encodeDisplay, normaliseHex, type DisplayCodes, type DisplayModel } from '../downlink/encoders.js';
import {
  deviceKey,
  reduceDownlink,
  type DeviceQueue,
  type DownlinkEffect,
  type DownlinkEvent,
  type DownlinkPolicy,
  type DownlinkState,
} from '../downlink/reduce.js';
import { loadQueues, lockBuckets, saveBuckets, saveQueues, type JobMeta } from '../downlink/store.js';
import { mqttOutboxPrefix } from '../runtime/mqtt-outbox.js';
import type { OutboxMessage } from '../runtime/outbox.js';
import { stableId } from '../shared/stable-id.js';
import {
  initialDisplayState,
  reduceDisplay,
  type DisplayEffect,
  type DisplayEvent,
  type DisplayKind,
  type DisplayPolicy,
  type DisplayState,
} from './reduce.js';

/**
 * The I/O of the display state machine and the downlink queue, inside one PostgreSQL transaction each (the
 * runtime's for the two consumers, the tick's own for the ticks). The chain, all in the same transaction:
 * occupancy change → display reducer → display command → encoder (model, per-device and per-tenant display
 * codes) → downlink reducer (coalescing, dedupe) → downlink_jobs; tick → downlink reducer (token buckets,
 * backoff, dead letter) → `command/down` through the MQTT outbox; ChirpStack outcome → downlink reducer → job
 * acked → display reducer → display command confirmed.
 *
 * Locking: every unit of work locks the display_states rows of its devices first, in (tenant_id, dev_eui) order
 * (the ticks skip locked ones), then the jobs, then (ticks only) the buckets in key order. Nothing else locks in
 * another order, so the consumers and ticks of several instances serialise per device and never deadlock.
 */
export interface DisplaySettings {
  /** The display policy but `requireAck`, which each device's `confirmed_downlinks` decides. */
  display: Omit<DisplayPolicy, 'requireAck'>;
  downlink: DownlinkPolicy;
  deadLetterTopic: string;
  encodeDeadLetter(record: DeadLetterRecord): Promise<Buffer>;
}

/** A display device as the chain needs it (display_devices, its tenant's active policy and live override). */
export interface DisplayDevice {
  tenantId: string;
  devEui: string;
  spaceId: string | null;
  model: DisplayModel;
  confirmed: boolean;
  codes: DisplayCodes;
  outOfService: boolean;
  override: { kind: DisplayKind; expiresAt: number } | null;
  applicationId: string | null;
  /**
   * The space's confirmed reservations that matter now: not ended, starting within the reservation lead (at most
   * `maxReservations`, soonest first); and the start of the next one after those (its wake-up), or null.
   */
  reservations: Array<{ reservationId: string; startsAt: number; endsAt: number }>;
  nextReservationAt: number | null;
}

export interface WorkResult {
  outbox: OutboxMessage[];
  downlinkEffects: DownlinkEffect[];
  displayCommands: number;
}

const kinds: readonly DisplayKind[] = ['free', 'occupied', 'reserved', 'reserved-soon', 'maintenance'];
/** Reservations of one space read per display: they cannot overlap, so few fit in the lead window. */
const maxReservations = 8;

/** Occupancy changes in: the displays beside the changed spaces follow the sensor. */
export async function applyOccupancyChanges(
  client: PoolClient,
  changes: readonly OccupancyChangeRecord[],
  settings: DisplaySettings,
  now: number,
): Promise<WorkResult> {
  const displays = await loadDisplays(
    client,
    'space',
    changes.map((c) => ({ tenantId: c.tenantId, id: c.spaceId })),
    now,
    settings.display.reservationLeadMs,
  );
  const bySpace = new Map(displays.map((d) => [`${d.tenantId}/${d.spaceId}`, d]));
  const work = await openWork(client, displays, settings, now, false);
  for (const change of changes) {
    const display = bySpace.get(`${change.tenantId}/${change.spaceId}`);
    if (!display || !work.states.has(key(display))) continue;
    await syncFacts(work, display);
    if (change.state !== 'free' && change.state !== 'occupied') continue;
    await reduceIn(work, display, {
      type: 'sensor-changed',
      eventId: change.eventId,
      at: change.confirmedAt,
      state: change.state,
      stale: false,
    });
  }
  return closeWork(work);
}

/** ChirpStack outcomes in: a job's txack/ack confirms it (and its display command), a nack makes it due again. */
export async function applyDownlinkOutcomes(
  client: PoolClient,
  outcomes: readonly DownlinkOutcomeRecord[],
  settings: DisplaySettings,
  now: number,
): Promise<WorkResult & { unmatched: number }> {
  const withJob = outcomes.filter((o) => o.queueItemId !== null && uuidPattern.test(o.queueItemId));
  const { rows: jobs } = await client.query<{ tenant_id: string; dev_eui: string; id: string }>(
    `SELECT j.tenant_id, j.dev_eui, j.id FROM downlink_jobs j
       JOIN unnest($1::uuid[], $2::uuid[]) AS k(t, i) ON j.tenant_id = k.t AND j.id = k.i`,
    [withJob.map((o) => o.tenantId), withJob.map((o) => o.queueItemId)],
  );
  const jobDevice = new Map(jobs.map((j) => [`${j.tenant_id}/${j.id}`, j.dev_eui]));
  const displays = await loadDisplays(
    client,
    'device',
    jobs.map((j) => ({ tenantId: j.tenant_id, id: j.dev_eui })),
    now,
    settings.display.reservationLeadMs,
  );
  const work = await openWork(client, displays, settings, now, false);
  const history: Array<{ o: DownlinkOutcomeRecord; devEui: string; outcome: string }> = [];
  let unmatched = 0;
  for (const o of outcomes) {
    const devEui = o.queueItemId === null ? undefined : jobDevice.get(`${o.tenantId}/${o.queueItemId}`);
    const k = devEui === undefined ? undefined : deviceKey(o.tenantId, devEui);
    const queue = k === undefined ? undefined : work.downlink.devices[k];
    if (devEui === undefined || k === undefined || !queue) {
      unmatched++;
      continue;
    }
    history.push({
      o,
      devEui,
      outcome: o.kind === 'TXACK' ? 'tx-ack' : o.acknowledged ? 'ack' : 'nack',
    });
    if (o.kind === 'TXACK' && o.gatewayId && o.gatewayId !== queue.gatewayId)
      work.downlink = {
        ...work.downlink,
        devices: { ...work.downlink.devices, [k]: { ...queue, gatewayId: o.gatewayId.toUpperCase() } },
      };
    await reduceDownlinkIn(work, {
      type: 'outcome',
      at: o.time,
      tenantId: o.tenantId,
      devEui,
      jobId: o.queueItemId!,
      kind: o.kind === 'ACK' ? 'ack' : 'txack',
      acknowledged: o.acknowledged,
    });
  }
  if (history.length > 0)
    await client.query(
      `INSERT INTO downlink_outcomes (tenant_id, time, job_id, dev_eui, outcome, detail)
       SELECT t, to_timestamp(tm / 1000.0), j, d, o, e
         FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::text[], $5::text[], $6::text[]) AS h(t, tm, j, d, o, e)
       ON CONFLICT DO NOTHING`,
      [
        history.map((h) => h.o.tenantId),
        history.map((h) => h.o.time),
        history.map((h) => h.o.queueItemId),
        history.map((h) => h.devEui),
        history.map((h) => h.outcome),
        history.map((h) => `event ${h.o.eventId}${h.o.gatewayId ? ` via ${h.o.gatewayId}` : ''}`),
      ],
    );
  return { ...(await closeWork(work)), unmatched };
}

/**
 * The display tick: displays due (last command unconfirmed past the confirm timeout, override expired, a
 * reservation's start − lead, start or end reached), and the displays of spaces whose reservations changed
 * status since their displays last synced (created or cancelled through the API, ended by the lifecycle job:
 * `reservations.displayed_status` differs from `status`), at most `limit` of each per call, skipping displays and
 * reservations another transaction holds. A changed reservation is marked synced only when every display of its
 * space was, so a skipped display gets it on a later tick. `tenants`: only these (a shard; tests that move the
 * clock); default all.
 */
export async function tickDisplays(
  client: PoolClient,
  settings: DisplaySettings,
  now: number,
  limit: number,
  tenants: readonly string[] | null = null,
): Promise<WorkResult> {
  const lead = settings.display.reservationLeadMs;
  const { rows } = await client.query<{ tenant_id: string; dev_eui: string }>(
    `SELECT tenant_id, dev_eui FROM display_states WHERE next_tick_at <= to_timestamp($1::float8 / 1000.0)
        AND ($3::uuid[] IS NULL OR tenant_id = ANY($3::uuid[]))
      ORDER BY next_tick_at LIMIT $2`,
    [now, limit, tenants],
  );
  const { rows: changed } = await client.query<{ tenant_id: string; id: string; space_id: string }>(
    `SELECT tenant_id, id, space_id FROM reservations WHERE displayed_status IS DISTINCT FROM status
        AND ($2::uuid[] IS NULL OR tenant_id = ANY($2::uuid[]))
      ORDER BY updated_at, tenant_id, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit, tenants],
  );
  const due = await loadDisplays(
    client,
    'device',
    rows.map((r) => ({ tenantId: r.tenant_id, id: r.dev_eui })),
    now,
    lead,
  );
  const ofSpaces = await loadDisplays(
    client,
    'space',
    changed.map((r) => ({ tenantId: r.tenant_id, id: r.space_id })),
    now,
    lead,
  );
  const work = await openWork(client, [...due, ...ofSpaces], settings, now, true, ofSpaces.length > 0);
  for (const display of work.displays.values()) {
    await syncFacts(work, display);
    await reduceIn(work, display, { type: 'tick', now });
  }
  const synced = changed.filter((r) =>
    ofSpaces.every((d) => d.tenantId !== r.tenant_id || d.spaceId !== r.space_id || work.states.has(key(d))),
  );
  if (synced.length > 0)
    await client.query(
      `UPDATE reservations r SET displayed_status = r.status
         FROM unnest($1::uuid[], $2::uuid[]) AS u(t, i) WHERE r.tenant_id = u.t AND r.id = u.i`,
      [synced.map((r) => r.tenant_id), synced.map((r) => r.id)],
    );
  return closeWork(work);
}

/**
 * The downlink tick: due jobs (queued, or sent and past their confirmation deadline), oldest first, at most
 * `limit`, through the token buckets; sends go to the MQTT outbox, exhausted jobs to the dead-letter topic.
 * Devices without a ChirpStack application (nowhere to send) are not picked.
 */
export async function tickDownlinks(
  client: PoolClient,
  settings: DisplaySettings,
  now: number,
  limit: number,
  tenants: readonly string[] | null = null,
): Promise<WorkResult> {
  const { rows } = await client.query<{ tenant_id: string; dev_eui: string }>(
    `SELECT j.tenant_id, j.dev_eui FROM downlink_jobs j
      WHERE j.status IN ('queued', 'sent') AND j.not_before <= to_timestamp($1::float8 / 1000.0)
        AND ($3::uuid[] IS NULL OR j.tenant_id = ANY($3::uuid[]))
        AND EXISTS (SELECT 1 FROM display_devices d
                     WHERE d.tenant_id = j.tenant_id AND d.dev_eui = j.dev_eui
                       AND (d.chirpstack_application_id IS NOT NULL
                            OR EXISTS (SELECT 1 FROM chirpstack_applications a WHERE a.tenant_id = j.tenant_id)))
      ORDER BY j.created_at LIMIT $2`,
    [now, limit, tenants],
  );
  const displays = await loadDisplays(
    client,
    'device',
    rows.map((r) => ({ tenantId: r.tenant_id, id: r.dev_eui })),
    now,
    settings.display.reservationLeadMs,
  );
  const work = await openWork(client, displays, settings, now, true);
  const queues = Object.values(work.downlink.devices);
  const buckets = await lockBuckets(
    client,
    queues.flatMap((q) => (q.gatewayId ? [q.gatewayId] : [])),
    queues.map((q) => q.tenantId),
    settings.downlink,
    now,
  );
  work.downlink = { ...work.downlink, ...buckets };
  await reduceDownlinkIn(work, { type: 'tick', now });
  await saveBuckets(client, work.downlink);
  return closeWork(work);
}

// ------------------------------------------------------------------------------------------------- the work

interface Work {
  client: PoolClient;
  settings: DisplaySettings;
  now: number;
  displays: Map<string, DisplayDevice>;
  states: Map<string, DisplayState>;
  statesBefore: Map<string, DisplayState>;
  /** The stored next_tick_at of each locked display (epoch ms), to write it only when it moves. */
  nextBefore: Map<string, number | null>;
  queuesBefore: Record<string, DeviceQueue>;
  downlink: DownlinkState;
  meta: Map<string, JobMeta>;
  downlinkEffects: DownlinkEffect[];
  outbox: OutboxMessage[];
  sends: Array<{ tenantId: string; jobId: string; devEui: string; attempt: number }>;
  displayCommands: number;
}

function key(d: { tenantId: string; devEui: string }): string {
  return deviceKey(d.tenantId, d.devEui);
}

/**
 * Locks the display_states rows of `displays` (creating missing ones when `create`, by default when not
 * `skipLocked`) and loads their queues.
 */
async function openWork(
  client: PoolClient,
  displays: readonly DisplayDevice[],
  settings: DisplaySettings,
  now: number,
  skipLocked: boolean,
  create = !skipLocked,
): Promise<Work> {
  const sorted = [...new Map(displays.map((d) => [key(d), d])).values()].sort((a, b) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0,
  );
  const params = [sorted.map((d) => d.tenantId), sorted.map((d) => d.devEui)];
  if (create && sorted.length > 0)
    await client.query(
      `INSERT INTO display_states (tenant_id, dev_eui, state)
       SELECT t, d, s FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS k(t, d, s)
       ON CONFLICT DO NOTHING`,
      [
        ...params,
        sorted.map((d) => JSON.stringify(initialDisplayState(d.tenantId, d.devEui, d.spaceId ?? ''))),
      ],
    );
  const { rows } =
    sorted.length === 0
      ? { rows: [] }
      : await client.query<{
          tenant_id: string;
          dev_eui: string;
          state: DisplayState;
          next_tick_at: Date | null;
        }>(
          `SELECT s.tenant_id, s.dev_eui, s.state, s.next_tick_at FROM display_states s
             JOIN unnest($1::uuid[], $2::text[]) AS k(t, d) ON s.tenant_id = k.t AND s.dev_eui = k.d
            ORDER BY s.tenant_id, s.dev_eui
              FOR UPDATE OF s ${skipLocked ? 'SKIP LOCKED' : ''}`,
          params,
        );
  const states = new Map<string, DisplayState>();
  const locked = new Map<string, DisplayDevice>();
  const nextBefore = new Map<string, number | null>();
  for (const r of rows) {
    const k = deviceKey(r.tenant_id, r.dev_eui);
    const display = sorted.find((d) => key(d) === k)!;
    locked.set(k, display);
    nextBefore.set(k, r.next_tick_at?.getTime() ?? null);
    // A display moved to another space keeps its commands but follows the new space from now on.
    states.set(k, { ...r.state, spaceId: display.spaceId ?? r.state.spaceId });
  }
  const queuesBefore = await loadQueues(client, [...locked.values()]);
  return {
    client,
    settings,
    now,
    displays: locked,
    states,
    statesBefore: new Map(states),
    nextBefore,
    queuesBefore,
    downlink: { devices: { ...queuesBefore }, gatewayBuckets: {}, tenantBuckets: {} },
    meta: new Map(),
    downlinkEffects: [],
    outbox: [],
    sends: [],
    displayCommands: 0,
  };
}

function displayPolicy(work: Work, display: DisplayDevice): DisplayPolicy {
  return { ...work.settings.display, requireAck: display.confirmed };
}

/**
 * Feeds the display the facts read from the database when they changed: device status, live override, and the
 * space's reservations — one gone from the database (cancelled, no-show, expired early) is cancelled, a new one
 * created, one whose start passed started (so it shows `reserved` until its end; `reserved-soon` within the lead
 * before). A creation seen after its start shows nothing by itself (the reducer does not show a booked reservation
 * past its start), so the start that follows it in the same call sends one command, not two.
 */
async function syncFacts(work: Work, display: DisplayDevice): Promise<void> {
  const state = work.states.get(key(display))!;
  const at = Math.max(work.now, state.clock);
  if (state.outOfService !== display.outOfService)
    await reduceIn(work, display, {
      type: 'lifecycle-changed',
      eventId: stableId('display-lifecycle', key(display), at),
      at,
      outOfService: display.outOfService,
      blocked: state.blocked,
    });
  const wanted = display.override;
  const current = work.states.get(key(display))!.override;
  if (wanted && (current?.kind !== wanted.kind || current.expiresAt !== wanted.expiresAt))
    await reduceIn(work, display, {
      type: 'override-set',
      eventId: stableId('display-override', key(display), wanted.kind, wanted.expiresAt),
      at,
      kind: wanted.kind,
      expiresAt: wanted.expiresAt,
    });
  else if (!wanted && current)
    await reduceIn(work, display, {
      type: 'override-cleared',
      eventId: stableId('display-override-cleared', key(display), at),
      at,
    });
  await syncReservations(work, display, at);
}

async function syncReservations(work: Work, display: DisplayDevice, at: number): Promise<void> {
  const k = key(display);
  const wanted = new Map(display.reservations.map((r) => [r.reservationId, r]));
  for (const r of work.states.get(k)!.reservations)
    if (!wanted.has(r.reservationId) && r.endsAt > at)
      await reduceIn(work, display, {
        type: 'reservation-cancelled',
        eventId: stableId('display-reservation-gone', k, r.reservationId),
        at,
        reservationId: r.reservationId,
      });
  for (const r of display.reservations) {
    if (!work.states.get(k)!.reservations.some((s) => s.reservationId === r.reservationId))
      await reduceIn(work, display, {
        type: 'reservation-created',
        eventId: stableId('display-reservation', k, r.reservationId),
        at,
        reservationId: r.reservationId,
        startsAt: r.startsAt,
        endsAt: r.endsAt,
      });
    const known = work.states.get(k)!.reservations.find((s) => s.reservationId === r.reservationId);
    if (known && !known.started && r.startsAt <= at)
      await reduceIn(work, display, {
        type: 'reservation-started',
        eventId: stableId('display-reservation-started', k, r.reservationId),
        at,
        reservationId: r.reservationId,
      });
  }
}

async function reduceIn(work: Work, display: DisplayDevice, event: DisplayEvent): Promise<void> {
  const k = key(display);
  const result = reduceDisplay(work.states.get(k)!, event, displayPolicy(work, display));
  work.states.set(k, result.state);
  for (const effect of result.effects) await enqueueCommand(work, display, effect);
}

/** A display command becomes a downlink request; a payload the device already shows confirms it at once. */
async function enqueueCommand(work: Work, display: DisplayDevice, command: DisplayEffect): Promise<void> {
  work.displayCommands++;
  const encoded = encodeDisplay(display.model, command.kind, command.look, display.codes);
  const queue = work.downlink.devices[key(display)];
  const requestId = `${command.commandId}:${command.resend}`;
  const jobId = stableId('downlink-job', display.tenantId, display.devEui, requestId);
  work.meta.set(jobId, {
    spaceId: display.spaceId,
    reason: command.reason === 'override' ? 'override' : command.resend > 0 ? 'policy' : 'state-change',
  });
  await reduceDownlinkIn(work, {
    type: 'enqueue',
    at: work.now,
    tenantId: display.tenantId,
    devEui: display.devEui,
    gatewayId: queue?.gatewayId ?? null,
    requestId,
    correlationId: command.commandId,
    fPort: encoded.fPort,
    payloadHex: encoded.payloadHex,
    confirmed: display.confirmed,
  });
}

async function reduceDownlinkIn(work: Work, event: DownlinkEvent): Promise<void> {
  const result = reduceDownlink(work.downlink, event, work.settings.downlink);
  work.downlink = result.state;
  for (const effect of result.effects) {
    work.downlinkEffects.push(effect);
    const display = work.displays.get(deviceKey(effect.tenantId, effect.devEui));
    if (!display) continue;
    switch (effect.type) {
      case 'send-downlink': {
        if (!display.applicationId) break;
        const message = commandDownMessage({
          applicationId: display.applicationId,
          devEui: effect.devEui,
          queueItemId: effect.jobId,
          confirmed: effect.confirmed,
          fPort: effect.fPort,
          payloadHex: effect.payloadHex,
        });
        work.outbox.push({
          tenantId: effect.tenantId,
          id: stableId('downlink-send', effect.jobId, effect.attempt),
          time: work.now,
          topic: `${mqttOutboxPrefix}${message.topic}`,
          key: effect.devEui,
          value: message.body,
        });
        work.sends.push({
          tenantId: effect.tenantId,
          jobId: effect.jobId,
          devEui: effect.devEui,
          attempt: effect.attempt,
        });
        break;
      }
      case 'downlink-confirmed':
        if (effect.correlationId)
          await reduceIn(work, display, {
            type: 'downlink-confirmed',
            eventId: stableId('downlink-confirmed', effect.jobId),
            at: effect.at,
            commandId: effect.correlationId,
            kind: effect.kind,
            acknowledged: effect.kind === 'ack' ? true : null,
          });
        break;
      case 'downlink-skipped':
        // The device already shows this payload (confirmed within the dedupe window): the command is done.
        if (effect.reason === 'already-confirmed' && effect.correlationId)
          await reduceIn(work, display, {
            type: 'downlink-confirmed',
            eventId: stableId('downlink-skipped', effect.jobId),
            at: work.now,
            commandId: effect.correlationId,
            kind: 'ack',
            acknowledged: true,
          });
        break;
      case 'downlink-dead-lettered':
        work.outbox.push(await deadLetter(work, effect));
        break;
      case 'downlink-superseded':
        break;
    }
  }
}

async function deadLetter(
  work: Work,
  effect: Extract<DownlinkEffect, { type: 'downlink-dead-lettered' }>,
): Promise<OutboxMessage> {
  const eventId = stableId('dead-letter', 'downlink', effect.jobId);
  const reason = `downlink ${effect.jobId} not confirmed after ${effect.attempts} attempts`;
  const value = await work.settings.encodeDeadLetter({
    eventId,
    tenantId: effect.tenantId,
    devEui: effect.devEui,
    source: 'downlink',
    errorCode: 'DOWNLINK_UNCONFIRMED',
    reason,
    receivedAt: effect.at,
    contentType: 'application/json',
    origin: `downlink_jobs/${effect.jobId}`,
    original: Buffer.from(JSON.stringify(effect)),
  });
  return {
    tenantId: effect.tenantId,
    id: eventId,
    time: effect.at,
    topic: work.settings.deadLetterTopic,
    key: effect.devEui,
    value,
    headers: {
      'error-code': 'DOWNLINK_UNCONFIRMED',
      processor: 'downlink',
      origin: `downlink_jobs/${effect.jobId}`,
    },
  };
}

/** Writes the display states, the queues and the send history; returns the outbox rows. */
async function closeWork(work: Work): Promise<WorkResult> {
  const { client } = work;
  const { confirmTimeoutMs, reservationLeadMs } = work.settings.display;
  const changed = [...work.states]
    .map(([k, s]) => ({
      s,
      next: nextTickAt(
        s,
        confirmTimeoutMs,
        reservationLeadMs,
        work.displays.get(k)?.nextReservationAt ?? null,
      ),
      moved: s !== work.statesBefore.get(k),
      k,
    }))
    .filter((c) => c.moved || c.next !== work.nextBefore.get(c.k));
  if (changed.length > 0)
    await client.query(
      `UPDATE display_states s
          SET state = u.state, next_tick_at = to_timestamp(u.next / 1000.0), updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::float8[]) AS u(t, d, state, next)
        WHERE s.tenant_id = u.t AND s.dev_eui = u.d`,
      [
        changed.map((c) => c.s.tenantId),
        changed.map((c) => c.s.displayId),
        changed.map((c) => JSON.stringify(c.s)),
        changed.map((c) => c.next),
      ],
    );
  await saveQueues(client, work.queuesBefore, work.downlink, work.downlinkEffects, work.meta);
  if (work.sends.length > 0)
    await client.query(
      `INSERT INTO downlink_outcomes (tenant_id, time, job_id, dev_eui, outcome, detail)
       SELECT t, to_timestamp($5::float8 / 1000.0), j, d, 'enqueued', 'attempt ' || a
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[]) AS s(t, j, d, a)
       ON CONFLICT DO NOTHING`,
      [
        work.sends.map((s) => s.tenantId),
        work.sends.map((s) => s.jobId),
        work.sends.map((s) => s.devEui),
        work.sends.map((s) => s.attempt),
        work.now,
      ],
    );
  return {
    outbox: work.outbox,
    downlinkEffects: work.downlinkEffects,
    displayCommands: work.displayCommands,
  };
}

/**
 * When the display tick must look again: the confirm deadline of an unconfirmed command, an override's end, and
 * for reservations the next of: a known one's start − lead (`reserved-soon`), start (`reserved`) and end (the
 * sensor again), and the next one's start − lead (`nextReservationAt`, not known to the state yet). Reservation
 * times already past are left out (a start refused in maintenance is retried when the facts change).
 */
export function nextTickAt(
  state: DisplayState,
  confirmTimeoutMs: number,
  reservationLeadMs = 0,
  nextReservationAt: number | null = null,
): number | null {
  const times: number[] = [];
  const last = state.lastCommand;
  if (last && !last.confirmed) times.push(last.sentAt + confirmTimeoutMs);
  if (state.override) times.push(state.override.expiresAt);
  const reservationTimes = state.reservations.flatMap((r) =>
    r.started ? [r.endsAt] : [r.startsAt - reservationLeadMs, r.startsAt, r.endsAt],
  );
  if (nextReservationAt !== null) reservationTimes.push(nextReservationAt - reservationLeadMs);
  times.push(...reservationTimes.filter((t) => t > state.clock));
  return times.length === 0 ? null : Math.min(...times);
}

// ----------------------------------------------------------------------------------------------- the devices

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Display devices by space or by DevEUI, with their tenant's active display codes, live override, and their
 * space's confirmed reservations as of `now` (those starting within `leadMs`, and the next one's start).
 */
async function loadDisplays(
  client: PoolClient,
  by: 'space' | 'device',
  keys: ReadonlyArray<{ tenantId: string; id: string }>,
  now: number,
  leadMs: number,
): Promise<DisplayDevice[]> {
  if (keys.length === 0) return [];
  const { rows } = await client.query<{
    tenant_id: string;
    dev_eui: string;
    space_id: string | null;
    device_type: string | null;
    f_port: number;
    confirmed_downlinks: boolean;
    display_codes: Record<string, unknown>;
    status: string;
    policy_codes: Record<string, unknown> | null;
    override_kind: string | null;
    override_expires: Date | null;
    application_id: string | null;
    reservations: Array<{ id: string; starts: number; ends: number }>;
    next_reservation: Date | null;
  }>(
    `SELECT d.tenant_id, d.dev_eui, d.space_id, d.device_type, d.f_port, d.confirmed_downlinks, d.display_codes,
            d.status, p.display_codes AS policy_codes, o.display_state AS override_kind,
            o.expires_at AS override_expires, rv.list AS reservations, nx.starts AS next_reservation,
            coalesce(d.chirpstack_application_id,
                     (SELECT a.application_id FROM chirpstack_applications a WHERE a.tenant_id = d.tenant_id
                       ORDER BY a.created_at, a.application_id LIMIT 1)) AS application_id
       FROM display_devices d
       JOIN (SELECT DISTINCT t, i FROM unnest($1::uuid[], $2::text[]) AS u(t, i)) AS k
         ON d.tenant_id = k.t AND (CASE WHEN $3 = 'space' THEN d.space_id::text ELSE d.dev_eui END) = k.i
       LEFT JOIN display_policies p ON p.tenant_id = d.tenant_id AND p.is_active
       LEFT JOIN LATERAL (
             SELECT o.display_state, o.expires_at FROM display_overrides o
              WHERE o.tenant_id = d.tenant_id AND o.space_id = d.space_id AND o.cleared_at IS NULL
                AND o.starts_at <= now() AND o.expires_at > now() AND o.display_state <> 'off'
              ORDER BY o.starts_at DESC LIMIT 1) AS o ON true
       LEFT JOIN LATERAL (
             SELECT coalesce(json_agg(json_build_object(
                      'id', r.id,
                      'starts', (extract(epoch FROM lower(r.during)) * 1000)::float8,
                      'ends', (extract(epoch FROM upper(r.during)) * 1000)::float8) ORDER BY lower(r.during)),
                    '[]') AS list
               FROM (SELECT r.id, r.during FROM reservations r
                      WHERE r.tenant_id = d.tenant_id AND r.space_id = d.space_id AND r.status = 'confirmed'
                        AND lower(r.during) <= to_timestamp(($4::float8 + $5::float8) / 1000.0)
                        AND upper(r.during) > to_timestamp($4::float8 / 1000.0)
                      ORDER BY lower(r.during) LIMIT $6) AS r) AS rv ON true
       LEFT JOIN LATERAL (
             SELECT lower(r.during) AS starts FROM reservations r
              WHERE r.tenant_id = d.tenant_id AND r.space_id = d.space_id AND r.status = 'confirmed'
                AND lower(r.during) > to_timestamp(($4::float8 + $5::float8) / 1000.0)
              ORDER BY lower(r.during) LIMIT 1) AS nx ON true
      WHERE d.archived_at IS NULL AND d.status <> 'decommissioned'`,
    [keys.map((k) => k.tenantId), keys.map((k) => k.id), by, now, leadMs, maxReservations],
  );
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    devEui: r.dev_eui,
    spaceId: r.space_id,
    model: r.device_type === 'kuando-busylight' ? 'kuando-busylight' : 'heltec-1byte',
    confirmed: r.confirmed_downlinks,
    // The device's own codes win over its tenant's policy codes; both on the device's fPort.
    codes: { ...parseCodes(r.policy_codes ?? {}, r.f_port), ...parseCodes(r.display_codes, r.f_port) },
    outOfService: r.status !== 'active',
    override:
      r.override_kind !== null && r.override_expires !== null && (kinds as string[]).includes(r.override_kind)
        ? { kind: r.override_kind as DisplayKind, expiresAt: r.override_expires.getTime() }
        : null,
    applicationId: r.application_id,
    reservations: r.reservations.map((v) => ({ reservationId: v.id, startsAt: v.starts, endsAt: v.ends })),
    nextReservationAt: r.next_reservation?.getTime() ?? null,
  }));
}

/** `{"free": "01", "occupied": {"payloadHex": "02", "fPort": 3}}` → DisplayCodes; unknown kinds are ignored. */
function parseCodes(raw: Record<string, unknown>, fPort: number): DisplayCodes {
  const codes: DisplayCodes = {};
  for (const kind of kinds) {
    const value = raw[kind];
    if (typeof value === 'string') codes[kind] = { payloadHex: normaliseHex(value), fPort };
    else if (
      value &&
      typeof value === 'object' &&
      typeof (value as { payloadHex?: unknown }).payloadHex === 'string'
    ) {
      const v = value as { payloadHex: string; fPort?: unknown };
      codes[kind] = {
        payloadHex: normaliseHex(v.payloadHex),
        fPort: typeof v.fPort === 'number' ? v.fPort : fPort,
      };
    } else if (value !== undefined)
      throw new PlatformError('ENCODE_FAILED', `display code for ${kind} is neither hex nor {payloadHex}`);
  }
  return codes;
}
