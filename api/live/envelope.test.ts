import { describe, expect, it } from 'vitest';
import type { OccupancyChangeRecord } from '../../schemas/avro/records.js';
import type { Principal } from '../auth/principal.js';
import { allowedKinds, fromOccupancyChange, fromOccupancyRow, liveEventKinds } from './envelope.js';

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
});
