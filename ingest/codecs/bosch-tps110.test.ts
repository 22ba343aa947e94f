import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { decodeBoschTps110 } from './bosch-tps110.js';
import type { DecodedReading } from './types.js';

// Vendor examples: https://github.com/TheThingsNetwork/lorawan-devices/blob/master/vendor/bosch/tps110-0292-codec.yaml
// Layout: Bosch "Parking Lot Sensor communication interface",
// https://iot-shop.de/wp-content/uploads/2019/04/parking-lot-sensor-communication-interface.pdf
const none: DecodedReading = {
  frameType: null,
  occupied: null,
  batteryVolts: null,
  batteryStatus: null,
  temperatureC: null,
};

const startup = [0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1];

describe('Bosch Parking Lot Sensor (TPS110) codec', () => {
  it.each([
    {
      name: 'vendor example "Parking Status": occupied',
      fPort: 1,
      bytes: [1],
      want: { ...none, frameType: 'parking-status', occupied: true },
    },
    {
      name: 'parking status: free',
      fPort: 1,
      bytes: [0],
      want: { ...none, frameType: 'parking-status', occupied: false },
    },
    {
      name: 'vendor example "Heartbeat": occupied, -1 °C',
      fPort: 2,
      bytes: [1, 255],
      want: { ...none, frameType: 'heartbeat', occupied: true, temperatureC: -1 },
    },
    {
      name: 'heartbeat of older firmware without temperature',
      fPort: 2,
      bytes: [0],
      want: { ...none, frameType: 'heartbeat', occupied: false },
    },
    {
      name: 'vendor example "Startup with codes 804 and 885": firmware 0.29.2, occupied',
      fPort: 3,
      bytes: startup,
      want: { ...none, frameType: 'startup', occupied: true },
    },
    {
      name: 'device information frame carries no occupancy',
      fPort: 4,
      bytes: [0x01, 0x02],
      want: { ...none, frameType: 'device-information' },
    },
  ])('$name', ({ fPort, bytes, want }) => {
    expect(decodeBoschTps110(fPort, Buffer.from(bytes))).toEqual(want);
  });

  it.each([
    { name: 'unknown fPort 9', fPort: 9, bytes: [1] },
    { name: 'empty parking status', fPort: 1, bytes: [] },
    { name: 'truncated startup', fPort: 3, bytes: startup.slice(0, 16) },
  ])('refuses $name with DECODE_FAILED', ({ fPort, bytes }) => {
    let thrown: unknown;
    try {
      decodeBoschTps110(fPort, Buffer.from(bytes));
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'DECODE_FAILED')).toBe(true);
  });
});
