import type { OccupancyChangeRecord } from '../../schemas/avro/records.js';
import type { Principal, Scope } from '../auth/principal.js';

/**
 * The live-update contract: what a WebSocket client of `/api/v6/live` receives. Pure (no I/O), so the Kafka
 * source, the replay from PostgreSQL and the tests build the same envelope.
 *
 * Promises:
 * - Every event names its tenant, a stable `id` (the same event always has the same id, on the live path and on
 *   replay) and `time`, when it happened (ISO 8601, UTC, ms).
 * - A client only ever receives events of the one tenant it connected for, and only kinds its credentials may
 *   read (`kindScopes`: an API key needs the scope, members and platform admins read every kind).
 * - Order: one entity's events (e.g. one space's changes) arrive in the order they happened; across entities there
 *   is no order. The resume cursor is `(time, id)` (replay.ts).
 */
export const liveEventKinds = [
  'occupancy.changed',
  'device.status',
  'gateway.status',
  'reservation.changed',
  'alert.raised',
] as const;
export type LiveEventKind = (typeof liveEventKinds)[number];

/** The payload of each kind. Only `occupancy.changed` has a source today; the others are reserved shapes. */
export interface LiveEventData {
  'occupancy.changed': {
    spaceId: string;
    devEui: string;
    state: 'free' | 'occupied';
    previousState: 'unknown' | 'free' | 'occupied';
    /** How long the space was in previousState, ms; null when unknown. */
    previousDurationMs: number | null;
  };
  'device.status': {
    devEui: string;
    batteryLevel: number | null;
    margin: number;
    externalPowerSource: boolean;
  };
  'gateway.status': { gatewayId: string; online: boolean };
  'reservation.changed': { reservationId: string; spaceId: string; status: string };
  'alert.raised': { alertId: string; severity: 'info' | 'warning' | 'critical'; message: string };
}

export interface LiveEvent<K extends LiveEventKind = LiveEventKind> {
  type: 'event';
  /** Stable event id (UUID): dedupe and resume by it. */
  id: string;
  kind: K;
  tenantId: string;
  /** When it happened, ISO 8601 UTC with ms. */
  time: string;
  data: LiveEventData[K];
}

/**
 * Sent once per connection, after any replay and before the first live event. `replayed`: the missed events that
 * were just sent. `resync`: the gap could not be replayed (cursor unknown or older than the replay window, or more
 * missed events than the replay bound) — reload state over REST, then keep listening; live events follow.
 */
export interface ReadyMessage {
  type: 'ready';
  tenantId: string;
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
  'gateway.status': 'gateways:read',
  'reservation.changed': 'reservations:read',
  'alert.raised': 'devices:read',
};

/** The kinds a principal may receive; empty means the connection is refused (403). */
export function allowedKinds(principal: Principal): ReadonlySet<LiveEventKind> {
  if (principal.kind !== 'api_key') return new Set(liveEventKinds);
  const all = principal.scopes.includes('admin');
  return new Set(liveEventKinds.filter((k) => all || principal.scopes.includes(kindScopes[k])));
}

export function fromOccupancyChange(record: OccupancyChangeRecord): LiveEvent<'occupancy.changed'> {
  return {
    type: 'event',
    id: record.eventId,
    kind: 'occupancy.changed',
    tenantId: record.tenantId,
    time: new Date(record.time).toISOString(),
    data: {
      spaceId: record.spaceId,
      devEui: record.devEui,
      state: record.state,
      previousState: record.previousState,
      previousDurationMs: record.previousDurationMs,
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
