import type {
  DeviceStatusRecord,
  LivenessAlertRecord,
  OccupancyChangeRecord,
  ReservationEventRecord,
} from '../../schemas/avro/records.js';
import type { Principal, Scope } from '../auth/principal.js';

/**
 * The live-update contract: what a WebSocket client of `/api/v6/live` receives. Pure (no I/O), so the Kafka
 * source, the replay from PostgreSQL and the tests build the same envelope.
 *
 * Promises:
 * - Every event names its tenant, a stable `id` (the same event always has the same id, on the live path and on
 *   replay) and `time`, when it happened (ISO 8601, UTC, ms).
 * - A client only ever receives events of the one tenant it connected for, and only kinds it asked for
 *   (`?kinds=`) that its credentials may read (`kindScopes`: an API key needs the scope, members and platform
 *   admins read every kind).
 * - Order: one entity's events (one space's changes, one device's alerts) arrive in the order they happened;
 *   across entities there is no order.
 * - Resume: the kinds in `replayableKinds` are recorded in PostgreSQL with a position taken at insert (not
 *   commit order, nor the order a client receives them in); the id of any such event is a resume cursor
 *   (replay.ts): what was positioned after it is replayed, and what was positioned before it and recorded at most
 *   the lookback (API_LIVE_REPLAY_LOOKBACK_S) before it. The replay re-sends events the client already has: a
 *   client keeps the ids it received within the lookback across a reconnect and drops repeats (one connection
 *   drops its own repeats). The other kinds are live only: missed ones are not replayed.
 */
export const liveEventKinds = [
  'occupancy.changed',
  'device.status',
  'device.alert',
  'gateway.alert',
  'reservation.changed',
] as const;
export type LiveEventKind = (typeof liveEventKinds)[number];

/** The kinds a reconnecting client gets back (replay.ts); the others are live only. */
export const replayableKinds: ReadonlySet<LiveEventKind> = new Set<LiveEventKind>([
  'occupancy.changed',
  'device.alert',
  'gateway.alert',
]);

/** A liveness alert: raised when the entity fell silent, cleared when it was heard again. */
interface AlertData {
  /** The raise's id: a raise and its clear share it. */
  alertId: string;
  state: 'raised' | 'cleared';
  /** When the entity was last heard (ISO 8601): for a raise, before it fell silent; for a clear, the frame. */
  lastHeard: string;
}

/** The payload of each kind. */
export interface LiveEventData {
  'occupancy.changed': {
    spaceId: string;
    devEui: string;
    state: 'free' | 'occupied';
    previousState: 'unknown' | 'free' | 'occupied';
    /** How long the space was in previousState, ms; null when unknown. */
    previousDurationMs: number | null;
  };
  /** A device's answer to a status request (parking.device-status.v1). */
  'device.status': {
    devEui: string;
    /** Percent, 0-100; null when the device cannot measure it or runs on external power. */
    batteryLevel: number | null;
    /** Demodulation margin of the last uplink, dB. */
    margin: number;
    externalPowerSource: boolean;
  };
  /** A device fell silent (no uplink within its expected interval) or was heard again. */
  'device.alert': AlertData & { devEui: string };
  /** A gateway fell silent (offline) or was heard again (online). */
  'gateway.alert': AlertData & { gatewayId: string };
  /** A reservation reached a status (parking.reservation-events.v1). */
  'reservation.changed': {
    reservationId: string;
    spaceId: string;
    /** The reserved space's sensor, when it has one. */
    devEui: string | null;
    type: ReservationEventRecord['type'];
    status: ReservationEventRecord['status'];
    previousStatus: ReservationEventRecord['previousStatus'];
    /** The reserved interval, ISO 8601: [startsAt, endsAt). */
    startsAt: string;
    endsAt: string;
    userId: string | null;
  };
}

export interface LiveEvent<K extends LiveEventKind = LiveEventKind> {
  type: 'event';
  /** Stable event id (UUID): dedupe by it; the id of a replayable kind is also a resume cursor. */
  id: string;
  kind: K;
  tenantId: string;
  /** When it happened, ISO 8601 UTC with ms. */
  time: string;
  data: LiveEventData[K];
}

/**
 * Sent once per connection, after any replay and before the first live event. `kinds`: what this connection
 * receives (asked for and allowed). `replayed`: the missed events that were just sent. `resync`: the gap could not
 * be replayed (cursor unknown or older than the replay window, or more missed events than the replay bound) —
 * reload state over REST, then keep listening; live events follow.
 */
export interface ReadyMessage {
  type: 'ready';
  tenantId: string;
  kinds: LiveEventKind[];
  resume:
    | { status: 'none' }
    | { status: 'replayed'; count: number }
    | { status: 'resync'; reason: 'cursor-unknown' | 'too-old' | 'too-many' };
}

export type ServerMessage = LiveEvent | ReadyMessage;

/**
 * Close codes. 1001 on shutdown; the 4xxx codes are this API's: reconnect (with `lastEventId`) on 4001 and 4008.
 */
export const closeCodes = {
  goingAway: 1001,
  /** The connection outlived API_LIVE_MAX_CONNECTION_S: reconnect with fresh credentials to continue. */
  reauthenticate: 4001,
  /** The client read too slowly and its send buffer passed API_LIVE_MAX_BUFFERED_BYTES. */
  slowConsumer: 4008,
} as const;

/** The API-key scope each kind needs (members and platform admins may read every kind). */
export const kindScopes: Record<LiveEventKind, Scope> = {
  'occupancy.changed': 'spaces:read',
  'device.status': 'devices:read',
  'device.alert': 'devices:read',
  'gateway.alert': 'gateways:read',
  'reservation.changed': 'reservations:read',
};

/** The kinds a principal may receive; empty means the connection is refused (403). */
export function allowedKinds(principal: Principal): ReadonlySet<LiveEventKind> {
  if (principal.kind !== 'api_key') return new Set(liveEventKinds);
  const all = principal.scopes.includes('admin');
  return new Set(liveEventKinds.filter((k) => all || principal.scopes.includes(kindScopes[k])));
}

export function isLiveEventKind(value: string): value is LiveEventKind {
  return (liveEventKinds as readonly string[]).includes(value);
}

const iso = (ms: number) => new Date(ms).toISOString();

export function fromOccupancyChange(record: OccupancyChangeRecord): LiveEvent<'occupancy.changed'> {
  return {
    type: 'event',
    id: record.eventId,
    kind: 'occupancy.changed',
    tenantId: record.tenantId,
    time: iso(record.time),
    data: {
      spaceId: record.spaceId,
      devEui: record.devEui,
      state: record.state,
      previousState: record.previousState,
      previousDurationMs: record.previousDurationMs,
    },
  };
}

export function fromDeviceStatus(record: DeviceStatusRecord): LiveEvent<'device.status'> {
  return {
    type: 'event',
    id: record.eventId,
    kind: 'device.status',
    tenantId: record.tenantId,
    time: iso(record.time),
    data: {
      devEui: record.devEui,
      batteryLevel: record.batteryLevel,
      margin: record.margin,
      externalPowerSource: record.externalPowerSource,
    },
  };
}

export function fromLivenessAlert(record: LivenessAlertRecord): LiveEvent<'device.alert' | 'gateway.alert'> {
  const common = {
    type: 'event' as const,
    id: record.eventId,
    tenantId: record.tenantId,
    time: iso(record.time),
  };
  const alert = { alertId: record.alertId, state: record.state, lastHeard: iso(record.lastHeard) };
  return record.kind === 'device'
    ? { ...common, kind: 'device.alert', data: { ...alert, devEui: record.entityId } }
    : { ...common, kind: 'gateway.alert', data: { ...alert, gatewayId: record.entityId } };
}

export function fromReservationEvent(record: ReservationEventRecord): LiveEvent<'reservation.changed'> {
  return {
    type: 'event',
    id: record.eventId,
    kind: 'reservation.changed',
    tenantId: record.tenantId,
    time: iso(record.time),
    data: {
      reservationId: record.reservationId,
      spaceId: record.spaceId,
      devEui: record.devEui,
      type: record.type,
      status: record.status,
      previousStatus: record.previousStatus,
      startsAt: iso(record.startsAt),
      endsAt: iso(record.endsAt),
      userId: record.userId,
    },
  };
}

/** A row of occupancy_changes (schemas/sql), as the replay reads it. */
export interface OccupancyChangeRow {
  tenant_id: string;
  event_id: string;
  time: Date;
  space_id: string;
  dev_eui: string;
  state: string;
  previous_state: string | null;
  previous_duration_s: number | null;
}

/** The same envelope as fromOccupancyChange for the same change (the table keeps seconds, the record ms). */
export function fromOccupancyRow(row: OccupancyChangeRow): LiveEvent<'occupancy.changed'> {
  return {
    type: 'event',
    id: row.event_id,
    kind: 'occupancy.changed',
    tenantId: row.tenant_id,
    time: row.time.toISOString(),
    data: {
      spaceId: row.space_id,
      devEui: row.dev_eui,
      state: row.state as 'free' | 'occupied',
      previousState: (row.previous_state ?? 'unknown') as 'unknown' | 'free' | 'occupied',
      previousDurationMs:
        row.previous_duration_s === null ? null : Math.round(row.previous_duration_s * 1000),
    },
  };
}

/** A row of liveness_alerts (schemas/sql) with the raise's and, when cleared, the clear's columns. */
export interface LivenessAlertRow {
  tenant_id: string;
  alert_id: string;
  kind: string;
  entity_id: string;
  raised_at: Date;
  /** The raise's lastHeard (the clear overwrites last_heard_at); null on a row cleared before it was kept. */
  raised_last_heard_at: Date | null;
  last_heard_at: Date;
  cleared_at: Date | null;
  clear_event_id: string | null;
}

/**
 * The raise (`state: 'raised'`) or the clear of an alert row: the same envelope as fromLivenessAlert for the
 * record the liveness processor published. Null when the row does not hold that event (not cleared; a raise
 * cleared before raised_last_heard_at was kept).
 */
export function fromLivenessAlertRow(
  row: LivenessAlertRow,
  state: 'raised' | 'cleared',
): LiveEvent<'device.alert' | 'gateway.alert'> | null {
  const kind = row.kind === 'device' ? 'device' : 'gateway';
  if (state === 'raised') {
    if (row.raised_last_heard_at === null) return null;
    return fromLivenessAlert({
      eventId: row.alert_id,
      tenantId: row.tenant_id,
      devEui: kind === 'device' ? row.entity_id : null,
      kind,
      entityId: row.entity_id,
      state,
      time: row.raised_at.getTime(),
      lastHeard: row.raised_last_heard_at.getTime(),
      alertId: row.alert_id,
    });
  }
  if (row.cleared_at === null || row.clear_event_id === null) return null;
  return fromLivenessAlert({
    eventId: row.clear_event_id,
    tenantId: row.tenant_id,
    devEui: kind === 'device' ? row.entity_id : null,
    kind,
    entityId: row.entity_id,
    state,
    time: row.cleared_at.getTime(),
    lastHeard: row.last_heard_at.getTime(),
    alertId: row.alert_id,
  });
}
