import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { tbms100Payload, uplinkEvent } from '../simulator/chirpstack-sim.js';
import { parseUplinkJson } from './uplink-event.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('parseUplinkJson', () => {
  it('reads a ChirpStack v4 uplink and normalises the DevEUI to uppercase', () => {
    const event = uplinkEvent({
      devEui: '70b3d57ed0051a2b',
      fCnt: 42,
      fPort: 102,
      payload: tbms100Payload(true),
      time: new Date('2026-11-25T10:00:00.000Z'),
      deduplicationId: '5D1C3B52-4D0D-4D2E-9F7E-0B1F1E6F9A11',
      gateways: [
        { gatewayId: 'g1', rssi: -110, snr: -2 },
        { gatewayId: 'g2', rssi: -95, snr: 6.5 },
      ],
    });
    expect(parseUplinkJson(json(event), 0)).toEqual({
      eventId: '5d1c3b52-4d0d-4d2e-9f7e-0b1f1e6f9a11',
      devEui: '70B3D57ED0051A2B',
      applicationId: '3f1c2a7e-5b8d-4e0f-9a6b-1c2d3e4f5a6b',
      time: Date.parse('2026-11-25T10:00:00.000Z'),
      fCnt: 42,
      fPort: 102,
      payload: tbms100Payload(true),
      object: undefined,
      rssi: -95,
      snr: 6.5,
      gatewayIds: ['g1', 'g2'],
    });
  });

  it('fills the defaults ChirpStack omits (fCnt 0, fPort 0, no data, no rxInfo, no time)', () => {
    const event = uplinkEvent({
      devEui: '70B3D57ED0051A2B',
      fCnt: 0,
      fPort: 0,
      payload: Buffer.alloc(0),
      gateways: [],
    });
    delete event['time'];
    const parsed = parseUplinkJson(json(event), 1234);
    expect(parsed).toMatchObject({
      fCnt: 0,
      fPort: 0,
      payload: Buffer.alloc(0),
      time: 1234,
      rssi: null,
      gatewayIds: [],
    });
  });

  it.each([
    { name: 'not JSON', body: Buffer.from('{nope') },
    { name: 'no deduplicationId', body: json({ deviceInfo: { devEui: '70B3D57ED0051A2B' } }) },
    {
      name: 'DevEUI of the wrong length',
      body: json({ deduplicationId: '5d1c3b52-4d0d-4d2e-9f7e-0b1f1e6f9a11', deviceInfo: { devEui: 'abc' } }),
    },
  ])('refuses $name with PAYLOAD_INVALID', ({ body }) => {
    let thrown: unknown;
    try {
      parseUplinkJson(body, 0);
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'PAYLOAD_INVALID')).toBe(true);
  });
});
