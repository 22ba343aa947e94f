import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { codecNames, decodeReading } from './index.js';

const tbms100Occupied = Buffer.from('01bb340400dc7801', 'hex');

describe('decodeReading', () => {
  it('offers one codec per supported device type', () => {
    expect(codecNames.sort()).toEqual(['bosch-tps110', 'browan-tbms100', 'nwave-nps405']);
  });

  it.each([
    {
      name: 'no object: the configured codec reads the bytes',
      codec: 'browan-tbms100',
      object: undefined,
      want: { codec: 'browan-tbms100', reading: { occupied: true, batteryVolts: 3.6, temperatureC: 20 } },
    },
    {
      name: 'object without occupancy: the configured codec reads the bytes',
      codec: 'browan-tbms100',
      object: { note: 'hello' },
      want: { codec: 'browan-tbms100', reading: { occupied: true } },
    },
    {
      name: 'platform field names win',
      codec: 'browan-tbms100',
      object: { occupied: false, batteryVolts: 3.1, temperatureC: 4, batteryStatus: 'LOW' },
      want: {
        codec: 'chirpstack-object',
        reading: {
          occupied: false,
          batteryVolts: 3.1,
          temperatureC: 4,
          batteryStatus: 'LOW',
          frameType: null,
        },
      },
    },
    {
      name: 'Nwave vendor decoder output',
      codec: 'nwave-nps405',
      object: {
        type: 'heartbeat',
        occupied: false,
        battery_voltage: 3.344,
        temperature: -10,
        battery_health: 'normal',
      },
      want: {
        codec: 'chirpstack-object',
        reading: {
          frameType: 'heartbeat',
          occupied: false,
          batteryVolts: 3.344,
          batteryStatus: 'OK',
          temperatureC: -10,
        },
      },
    },
    {
      name: 'Browan vendor decoder output (status 0/1, battery in V, temperatureBoard)',
      codec: 'browan-tbms100',
      object: { status: 1, battery: 3.6, temperatureBoard: 20, time: 4, count: 96476 },
      want: {
        codec: 'chirpstack-object',
        reading: {
          frameType: null,
          occupied: true,
          batteryVolts: 3.6,
          batteryStatus: null,
          temperatureC: 20,
        },
      },
    },
    {
      name: 'occupancy as a word and battery in millivolts',
      codec: 'bosch-tps110',
      object: { occupancy: 'FREE', batteryMv: 3300 },
      want: { codec: 'chirpstack-object', reading: { occupied: false, batteryVolts: 3.3 } },
    },
    {
      name: 'a battery percentage is not taken as volts',
      codec: 'bosch-tps110',
      object: { occupied: true, battery: 85 },
      want: { codec: 'chirpstack-object', reading: { occupied: true, batteryVolts: null } },
    },
    {
      name: 'a non-binary status is not occupancy',
      codec: 'bosch-tps110',
      object: { status: 'online', type: 'parking status' },
      want: { codec: 'bosch-tps110', reading: { frameType: 'parking-status', occupied: true } },
    },
  ])('$name', ({ codec, object, want }) => {
    const bytes = codec === 'browan-tbms100' ? tbms100Occupied : Buffer.from([1]);
    const fPort = codec === 'browan-tbms100' ? 102 : 1;
    expect(decodeReading(codec, fPort, bytes, object)).toMatchObject(want);
  });

  it('refuses an unknown codec name with DECODE_FAILED', () => {
    let thrown: unknown;
    try {
      decodeReading('acme-9000', 1, Buffer.from([1]), undefined);
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'DECODE_FAILED')).toBe(true);
  });
});
