import { describe, expect, it } from 'vitest';
import { nextTickAt } from './apply.js';
import { initialDisplayState, type DisplayState, type Reservation } from './reduce.js';

const min = 60_000;
const t0 = Date.parse('2026-11-25T10:00:00Z');
const lead = 15 * min;
const confirmTimeout = 5 * min;

function state(clock: number, reservations: Reservation[], over: Partial<DisplayState> = {}): DisplayState {
  return { ...initialDisplayState('t', 'D', 's'), clock, reservations, ...over };
}
const booked = (startsAt: number, endsAt: number, started = false): Reservation => ({
  reservationId: `r-${startsAt}`,
  startsAt,
  endsAt,
  started,
});

describe('nextTickAt: when the display tick must look at a display again', () => {
  it.each([
    { name: 'nothing pending: never', s: state(t0, []), next: null, at: null },
    {
      name: 'a booked reservation beyond the lead: its start − lead',
      s: state(t0 - 60 * min, [booked(t0, t0 + 30 * min)]),
      next: null,
      at: t0 - lead,
    },
    {
      name: 'within the lead: its start',
      s: state(t0 - lead, [booked(t0, t0 + 30 * min)]),
      next: null,
      at: t0,
    },
    {
      name: 'started: its end',
      s: state(t0, [booked(t0, t0 + 30 * min, true)]),
      next: null,
      at: t0 + 30 * min,
    },
    {
      name: 'a start refused (maintenance) is not retried by the clock: its end',
      s: state(t0 + min, [booked(t0, t0 + 30 * min)]),
      next: null,
      at: t0 + 30 * min,
    },
    {
      name: 'the next reservation, not in the state yet: its start − lead',
      s: state(t0, []),
      next: t0 + 120 * min,
      at: t0 + 105 * min,
    },
    {
      name: 'an unconfirmed command earlier than the reservation times: the confirm deadline',
      s: state(t0, [booked(t0 + 60 * min, t0 + 90 * min)], {
        lastCommand: {
          commandId: 'c',
          kind: 'free',
          look: { colour: [0, 255, 0], blink: false },
          reason: 'default',
          sentAt: t0,
          resend: 0,
          confirmed: false,
        },
      }),
      next: null,
      at: t0 + confirmTimeout,
    },
    {
      name: 'an override ending before the reservation: the override end',
      s: state(t0, [booked(t0 + 60 * min, t0 + 90 * min)], {
        override: { kind: 'maintenance', expiresAt: t0 + 10 * min },
      }),
      next: t0 + 240 * min,
      at: t0 + 10 * min,
    },
  ])('$name', ({ s, next, at }) => {
    expect(nextTickAt(s, confirmTimeout, lead, next)).toBe(at);
  });
});
