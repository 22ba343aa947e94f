import { PlatformError } from '../../lib/errors.js';
import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  cancelReservation,
  createReservation,
  getReservation,
  listReservations,
  type ReservationRow,
} from '../services/reservations.js';

/** The longest reservation accepted (seconds); the database refuses longer ones as well. */
export const maxReservationS = 24 * 3600;

const statuses = ['pending', 'confirmed', 'expired', 'cancelled', 'no_show'] as const;

export const reservationSchema = z
  .object({
    id: z.string().uuid(),
    spaceId: z.string().uuid(),
    startsAt: z.string().datetime(),
    endsAt: z.string().datetime(),
    status: z.enum(statuses),
    userId: z.string().uuid().nullable(),
    userEmail: z.string().nullable(),
    userPhone: z.string().nullable(),
    requestId: z.string(),
    createdAt: z.string().datetime(),
    cancelledAt: z.string().datetime().nullable(),
  })
  .openapi('Reservation');

function toView(r: ReservationRow): z.infer<typeof reservationSchema> {
  return {
    id: r.id,
    spaceId: r.space_id,
    startsAt: r.starts_at.toISOString(),
    endsAt: r.ends_at.toISOString(),
    status: r.status,
    userId: r.user_id,
    userEmail: r.user_email,
    userPhone: r.user_phone,
    requestId: r.request_id,
    createdAt: r.created_at.toISOString(),
    cancelledAt: r.cancelled_at?.toISOString() ?? null,
  };
}

const time = z.string().datetime({ offset: true });
const createBody = z
  .object({
    spaceId: z.string().uuid(),
    startsAt: time,
    endsAt: time,
    userEmail: z.string().email().max(320).optional(),
    userPhone: z.string().max(32).optional(),
    requestId: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,128}$/)
      .optional()
      .openapi({ description: 'idempotency key; default: the X-Request-Id header' }),
  })
  .strict()
  .refine((b) => Date.parse(b.endsAt) > Date.parse(b.startsAt), {
    message: 'must be after startsAt',
    path: ['endsAt'],
  })
  .refine((b) => Date.parse(b.endsAt) - Date.parse(b.startsAt) <= maxReservationS * 1000, {
    message: `a reservation lasts at most ${maxReservationS / 3600} hours`,
    path: ['endsAt'],
  })
  .openapi('ReservationCreate');
const reservationParams = z.object({ reservationId: z.string().uuid() });
const reservationList = listQuery(['startsAt', 'createdAt'], '-startsAt').extend({
  spaceId: z.string().uuid().optional(),
  status: z.enum(statuses).optional(),
});

const read = { role: 'viewer', scope: 'reservations:read', write: false } as const;
const book = { role: 'operator', scope: 'reservations:write', write: true } as const;

/**
 * Reservations: created idempotently (a retry with the same request id answers 200 with the first reservation;
 * the same id for another space or time is 409), cancelled, listed. Overlapping active reservations of a space:
 * 409; longer than `maxReservationS`: 400.
 */
export function addReservationRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/reservations',
    operationId: 'listReservations',
    summary: 'List reservations',
    tag: 'reservations',
    access: read,
    query: reservationList,
    status: 200,
    response: pageOf(reservationSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listReservations(db, tenantId, query)), query, toView),
  });
  api.add({
    method: 'post',
    path: '/reservations',
    operationId: 'createReservation',
    summary: 'Reserve a space (idempotent by request id; 200 for a replay)',
    tag: 'reservations',
    access: book,
    body: createBody,
    status: 201,
    otherStatuses: [200],
    response: reservationSchema,
    handler: async ({ body, write, principal, req, requestId, setStatus }) => {
      const key = body.requestId ?? (req.get('x-request-id') ? requestId : undefined);
      if (!key)
        throw new PlatformError('VALIDATION_FAILED', 'give requestId or X-Request-Id, so a retry is safe');
      const { row, replayed } = await write((db, tenantId) =>
        createReservation(db, tenantId, {
          spaceId: body.spaceId,
          startsAt: body.startsAt,
          endsAt: body.endsAt,
          userEmail: body.userEmail,
          userPhone: body.userPhone,
          userId: principal.kind === 'member' ? principal.userId : null,
          requestId: key,
        }),
      );
      if (replayed) setStatus(200);
      return toView(row);
    },
  });
  api.add({
    method: 'get',
    path: '/reservations/:reservationId',
    operationId: 'getReservation',
    summary: 'Get a reservation',
    tag: 'reservations',
    access: read,
    params: reservationParams,
    status: 200,
    response: reservationSchema,
    handler: async ({ params, read }) =>
      toView(await read((db, tenantId) => getReservation(db, tenantId, params.reservationId))),
  });
  api.add({
    method: 'post',
    path: '/reservations/:reservationId/cancel',
    operationId: 'cancelReservation',
    summary: 'Cancel a reservation (cancelling twice is harmless; an expired or no-show one: 409)',
    tag: 'reservations',
    access: book,
    params: reservationParams,
    status: 200,
    response: reservationSchema,
    handler: async ({ params, write }) =>
      toView(await write((db, tenantId) => cancelReservation(db, tenantId, params.reservationId))),
  });
}
