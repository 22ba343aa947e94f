import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';

/**
 * Reservations of one tenant: created idempotently by the client's request id, cancelled, listed. Overlapping
 * active reservations of a space are refused by the database (exclusion constraint -> CONFLICT), as is a span
 * over 24 hours (check -> VALIDATION_FAILED). The one implementation behind v5 and the v6 routes.
 *
 * Status changes after that are the reservation lifecycle job's (processors/reservations): `expired` once the end
 * passed, `no_show` when the space stayed unoccupied past the start's grace. The job also publishes the created
 * and cancelled events of the rows written here (parking.reservation-events.v1): it picks them up by their
 * unpublished status, so this service needs neither the outbox nor the Avro registry, and the event is published
 * only if this transaction committed. The display tick picks them up the same way (reservations.displayed_status).
 */
export type ReservationStatus = 'pending' | 'confirmed' | 'expired' | 'cancelled' | 'no_show';

export interface ReservationRow {
  id: string;
  space_id: string;
  starts_at: Date;
  ends_at: Date;
  status: ReservationStatus;
  user_id: string | null;
  user_email: string | null;
  user_phone: string | null;
  request_id: string;
  created_at: Date;
  updated_at: Date;
  cancelled_at: Date | null;
  sort_key: string;
}

const columns = `id, space_id, lower(during) AS starts_at, upper(during) AS ends_at, status, user_id, user_email,
  user_phone, request_id, created_at, updated_at, cancelled_at`;

export const reservationSorts = { startsAt: 'lower(during)', createdAt: 'created_at' } as const;
export type ReservationSort = keyof typeof reservationSorts;

export async function listReservations(
  db: PoolClient,
  tenantId: string,
  query: ListInput<ReservationSort> & {
    spaceId?: string | undefined;
    /** One status, or any of several (v5's `expired` covers `no_show`). */
    status?: ReservationStatus | readonly ReservationStatus[] | undefined;
  },
): Promise<ReservationRow[]> {
  const page = pageSql(reservationSorts, query, 5);
  const { rows } = await db.query<ReservationRow>(
    `SELECT ${columns}, ${page.sortKey} FROM reservations
      WHERE tenant_id = $1 AND ($2::uuid IS NULL OR space_id = $2) AND ($3::text[] IS NULL OR status = ANY($3))
        AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch} OFFSET $4`,
    [
      tenantId,
      query.spaceId ?? null,
      query.status === undefined ? null : typeof query.status === 'string' ? [query.status] : query.status,
      query.offset ?? 0,
      ...page.params,
    ],
  );
  return rows;
}

export async function getReservation(
  db: PoolClient,
  tenantId: string,
  reservationId: string,
): Promise<ReservationRow> {
  const { rows } = await db.query<ReservationRow>(
    `SELECT ${columns}, id::text AS sort_key FROM reservations WHERE tenant_id = $1 AND id = $2`,
    [tenantId, reservationId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such reservation');
  return rows[0];
}

export interface NewReservation {
  spaceId: string;
  startsAt: string;
  endsAt: string;
  userId: string | null;
  userEmail?: string | null | undefined;
  userPhone?: string | null | undefined;
  /** The idempotency key: a retry with the same key returns the first reservation. */
  requestId: string;
}

/**
 * Creates a confirmed reservation, or returns the one made earlier with the same request id (`replayed`). A
 * replay that asks for another space or time is a CONFLICT, not a silent mismatch. NOT_FOUND for an unknown
 * space.
 */
export async function createReservation(
  db: PoolClient,
  tenantId: string,
  input: NewReservation,
): Promise<{ row: ReservationRow; replayed: boolean }> {
  if (Date.parse(input.endsAt) <= Date.parse(input.startsAt))
    throw new PlatformError('VALIDATION_FAILED', 'the reservation must end after it starts');
  const space = await db.query('SELECT 1 FROM spaces WHERE tenant_id = $1 AND id = $2', [
    tenantId,
    input.spaceId,
  ]);
  if (space.rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such space');
  const { rows } = await db.query<ReservationRow>(
    `INSERT INTO reservations (tenant_id, space_id, during, status, user_id, user_email, user_phone, request_id)
     VALUES ($1, $2, tstzrange($3, $4, '[)'), 'confirmed', $5, $6, $7, $8)
     ON CONFLICT (tenant_id, request_id) DO NOTHING
     RETURNING ${columns}, id::text AS sort_key`,
    [
      tenantId,
      input.spaceId,
      input.startsAt,
      input.endsAt,
      input.userId,
      input.userEmail ?? null,
      input.userPhone ?? null,
      input.requestId,
    ],
  );
  if (rows[0]) return { row: rows[0], replayed: false };
  const earlier = await db.query<ReservationRow>(
    `SELECT ${columns}, id::text AS sort_key FROM reservations WHERE tenant_id = $1 AND request_id = $2`,
    [tenantId, input.requestId],
  );
  const row = earlier.rows[0]!;
  const same =
    row.space_id === input.spaceId &&
    row.starts_at.getTime() === Date.parse(input.startsAt) &&
    row.ends_at.getTime() === Date.parse(input.endsAt);
  if (!same) throw new PlatformError('CONFLICT', 'this request id was used for another reservation');
  return { row, replayed: true };
}

/**
 * Cancels a pending or confirmed reservation; cancelling again is harmless; an expired or no-show one: CONFLICT.
 * The update is conditional on the status, so a cancel racing the lifecycle job's expiry never overwrites it.
 */
export async function cancelReservation(
  db: PoolClient,
  tenantId: string,
  reservationId: string,
): Promise<ReservationRow> {
  const updated = await db.query(
    `UPDATE reservations SET status = 'cancelled', cancelled_at = now(), updated_at = now()
      WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'confirmed')`,
    [tenantId, reservationId],
  );
  const row = await getReservation(db, tenantId, reservationId);
  if (updated.rowCount === 0 && row.status !== 'cancelled')
    throw new PlatformError(
      'CONFLICT',
      row.status === 'no_show' ? 'the reservation ended as a no-show' : 'the reservation has already expired',
    );
  return row;
}
