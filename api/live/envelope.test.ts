import { describe, expect, it } from 'vitest';
import type {
  DeviceStatusRecord,
  LivenessAlertRecord,
  OccupancyChangeRecord,
  ReservationEventRecord,
} from '../../schemas/avro/records.js';
import type { Principal } from '../auth/principal.js';
import {
  allowedKinds,
  fromDeviceStatus,
  fromLivenessAlert,
  fromLivenessAlertRow,
  fromOccupancyChange,
  fromOccupancyRow,
  fromReservationEvent,
  liveEventKinds,
  type LivenessAlertRow,
} from './envelope.js';
import { subscribedKinds } from './server.js';

const record: OccupancyChangeRecord = {
  eventId: '5d3c1f2e-0000-5000-8000-000000000001',
  tenantId: '11111111-1111-4111-8111-111111111111',
  devEui: '0011223344556677',
  spaceId: '22222222-2222-4222-8222-222222222222',
  time: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
  confirmedAt: Date.UTC(2025, 0, 2, 3, 4, 15, 0),
  state: 'occupied',
  previousState: 'free',
  previousDurationMs: 61_250,
  uplinkEventId: '33333333-3333-4333-8333-333333333333',
};

describe('live envelope', () => {
  it('is the same for a change read from Kafka and from occupancy_changes (replay and live dedupe by it)', () => {
    const row = {
      tenant_id: record.tenantId,
      event_id: record.eventId,
      time: new Date(record.time),
      space_id: record.spaceId,
      dev_eui: record.devEui,
      state: record.state,
      previous_state: record.previousState,
      previous_duration_s: 61.25,
    };
    expect(fromOccupancyRow(row)).toEqual(fromOccupancyChange(record));
    expect(fromOccupancyChange(record)).toMatchObject({
      type: 'event',
      kind: 'occupancy.changed',
      time: '2025-01-02T03:04:05.678Z',
    });
  });

  const raise: LivenessAlertRecord = {
    eventId: '44444444-4444-4444-8444-444444444444',
    tenantId: record.tenantId,
    devEui: null,
    kind: 'gateway',
    entityId: 'AABBCCDDEEFF0011',
    state: 'raised',
    time: Date.UTC(2025, 0, 2, 4, 0, 0, 0),
    lastHeard: Date.UTC(2025, 0, 2, 3, 50, 0, 0),
    alertId: '44444444-4444-4444-8444-444444444444',
  };
  const clear: LivenessAlertRecord = {
    ...raise,
    eventId: '55555555-5555-4555-8555-555555555555',
    state: 'cleared',
    time: Date.UTC(2025, 0, 2, 4, 30, 0, 0),
    lastHeard: Date.UTC(2025, 0, 2, 4, 29, 59, 500),
  };
  const clearedRow: LivenessAlertRow = {
    tenant_id: raise.tenantId,
    alert_id: raise.alertId,
    kind: 'gateway',
    entity_id: raise.entityId,
    raised_at: new Date(raise.time),
    raised_last_heard_at: new Date(raise.lastHeard),
    last_heard_at: new Date(clear.lastHeard),
    cleared_at: new Date(clear.time),
    clear_event_id: clear.eventId,
  };

  it('is the same for an alert read from Kafka and from liveness_alerts, raise and clear from one row', () => {
    expect(fromLivenessAlertRow(clearedRow, 'raised')).toEqual(fromLivenessAlert(raise));
    expect(fromLivenessAlertRow(clearedRow, 'cleared')).toEqual(fromLivenessAlert(clear));
    expect(fromLivenessAlert(clear)).toEqual({
      type: 'event',
      id: clear.eventId,
      kind: 'gateway.alert',
      tenantId: raise.tenantId,
      time: '2025-01-02T04:30:00.000Z',
      data: {
        alertId: raise.alertId,
        gatewayId: 'AABBCCDDEEFF0011',
        state: 'cleared',
        lastHeard: '2025-01-02T04:29:59.500Z',
      },
    });
    const device = {
      ...raise,
      kind: 'device' as const,
      devEui: '0011223344556677',
      entityId: '0011223344556677',
    };
    expect(fromLivenessAlert(device)).toMatchObject({
      kind: 'device.alert',
      data: { devEui: '0011223344556677', state: 'raised', lastHeard: '2025-01-02T03:50:00.000Z' },
    });
  });

  it('has no event for a clear of an open alert, nor for a raise whose lastHeard was not kept', () => {
    const open = {
      ...clearedRow,
      cleared_at: null,
      clear_event_id: null,
      last_heard_at: new Date(raise.lastHeard),
    };
    expect(fromLivenessAlertRow(open, 'cleared')).toBeNull();
    expect(fromLivenessAlertRow(open, 'raised')).toEqual(fromLivenessAlert(raise));
    expect(fromLivenessAlertRow({ ...clearedRow, raised_last_heard_at: null }, 'raised')).toBeNull();
  });

  it('envelopes a device status and a reservation event field by field', () => {
    const status: DeviceStatusRecord = {
      eventId: '66666666-6666-4666-8666-666666666666',
      tenantId: record.tenantId,
      devEui: '0011223344556677',
      time: Date.UTC(2025, 0, 2, 5, 0, 0, 1),
      receivedAt: Date.UTC(2025, 0, 2, 5, 0, 0, 20),
      source: 'MQTT',
      applicationId: 'app',
      margin: -3,
      externalPowerSource: false,
      batteryLevel: 42.5,
    };
    expect(fromDeviceStatus(status)).toEqual({
      type: 'event',
      id: status.eventId,
      kind: 'device.status',
      tenantId: record.tenantId,
      time: '2025-01-02T05:00:00.001Z',
      data: { devEui: '0011223344556677', batteryLevel: 42.5, margin: -3, externalPowerSource: false },
    });
    const reservation: ReservationEventRecord = {
      eventId: '77777777-7777-4777-8777-777777777777',
      tenantId: record.tenantId,
      devEui: null,
      reservationId: '88888888-8888-4888-8888-888888888888',
      spaceId: record.spaceId,
      type: 'no-show',
      status: 'no_show',
      previousStatus: 'confirmed',
      startsAt: Date.UTC(2025, 0, 2, 6, 0, 0, 0),
      endsAt: Date.UTC(2025, 0, 2, 7, 0, 0, 0),
      userId: '99999999-9999-4999-8999-999999999999',
      time: Date.UTC(2025, 0, 2, 6, 15, 0, 0),
    };
    expect(fromReservationEvent(reservation)).toEqual({
      type: 'event',
      id: reservation.eventId,
      kind: 'reservation.changed',
      tenantId: record.tenantId,
      time: '2025-01-02T06:15:00.000Z',
      data: {
        reservationId: reservation.reservationId,
        spaceId: record.spaceId,
        devEui: null,
        type: 'no-show',
        status: 'no_show',
        previousStatus: 'confirmed',
        startsAt: '2025-01-02T06:00:00.000Z',
        endsAt: '2025-01-02T07:00:00.000Z',
        userId: reservation.userId,
      },
    });
  });

  const actor = { type: 'user' as const, id: 'u' };
  const cases: Array<{ name: string; principal: Principal; kinds: string[] }> = [
    {
      name: 'a member reads every kind',
      principal: { kind: 'member', tenantId: 't', userId: 'u', role: 'viewer', actor },
      kinds: [...liveEventKinds],
    },
    {
      name: 'a platform admin reads every kind of the selected tenant',
      principal: { kind: 'platform_admin', tenantId: 't', userId: 'u', actor },
      kinds: [...liveEventKinds],
    },
    {
      name: 'an API key reads the kinds its scopes cover',
      principal: { kind: 'api_key', tenantId: 't', keyId: 'k', scopes: ['spaces:read'], actor },
      kinds: ['occupancy.changed'],
    },
    {
      name: 'an API key with devices:read reads device status and device alerts, not gateway alerts',
      principal: { kind: 'api_key', tenantId: 't', keyId: 'k', scopes: ['devices:read'], actor },
      kinds: ['device.status', 'device.alert'],
    },
    {
      name: 'an API key with admin reads every kind',
      principal: { kind: 'api_key', tenantId: 't', keyId: 'k', scopes: ['admin'], actor },
      kinds: [...liveEventKinds],
    },
    {
      name: 'an API key with no reading scope reads nothing (refused at connect)',
      principal: { kind: 'api_key', tenantId: 't', keyId: 'k', scopes: ['webhooks:write'], actor },
      kinds: [],
    },
  ];
  it.each(cases)('$name', ({ principal, kinds }) => {
    expect([...allowedKinds(principal)].sort()).toEqual([...kinds].sort());
  });

  const every = new Set(liveEventKinds);
  const subscriptions: Array<{
    name: string;
    allowed: Set<string>;
    query: string;
    kinds: string[] | number;
  }> = [
    { name: 'no kinds parameter: everything allowed', allowed: every, query: '', kinds: [...liveEventKinds] },
    {
      name: 'asked kinds that are allowed',
      allowed: every,
      query: 'kinds=device.alert,gateway.alert',
      kinds: ['device.alert', 'gateway.alert'],
    },
    {
      name: 'asked kinds narrowed to the allowed ones',
      allowed: new Set(['occupancy.changed', 'device.alert']),
      query: 'kinds=device.alert,gateway.alert',
      kinds: ['device.alert'],
    },
    { name: 'an unknown kind is a 400', allowed: every, query: 'kinds=occupancy.changed,nope', kinds: 400 },
    { name: 'an empty kinds parameter is a 400', allowed: every, query: 'kinds=', kinds: 400 },
    {
      name: 'nothing asked is allowed: 403',
      allowed: new Set(['occupancy.changed']),
      query: 'kinds=reservation.changed',
      kinds: 403,
    },
    { name: 'nothing allowed at all: 403', allowed: new Set(), query: '', kinds: 403 },
  ];
  it.each(subscriptions)('subscription: $name', ({ allowed, query, kinds }) => {
    const run = () =>
      subscribedKinds(allowed as Set<(typeof liveEventKinds)[number]>, new URLSearchParams(query));
    if (typeof kinds === 'number')
      expect(run).toThrow(
        expect.objectContaining({ code: kinds === 400 ? 'VALIDATION_FAILED' : 'FORBIDDEN' }) as Error,
      );
    else expect([...run()].sort()).toEqual([...kinds].sort());
  });
});
