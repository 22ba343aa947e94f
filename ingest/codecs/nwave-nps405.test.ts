import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { decodeNwaveNps405 } from './nwave-nps405.js';
import type { DecodedReading } from './types.js';

// Vendor examples: https://github.com/TheThingsNetwork/lorawan-devices/blob/master/vendor/nwave/nps405-codec.yaml
// Layout: https://nwaveio.atlassian.net/wiki/spaces/ND/pages/1654784042/Nwave+LoRaWAN+Parking+Sensor+-+Getting+Started
const none: DecodedReading = {
  frameType: null,
  occupied: null,
  batteryVolts: null,
  batteryStatus: null,
  temperatureC: null,
};

describe('Nwave NPS405 codec', () => {
  it.each([
    {
      name: 'vendor example "Parking Status": 0x95 is occupied (bit 0), previous state 74 min',
      fPort: 1,
      bytes: [0x95],
      want: { ...none, frameType: 'parking-status', occupied: true },
    },
    {
      name: 'parking status: free',
      fPort: 1,
      bytes: [0x94],
      want: { ...none, frameType: 'parking-status', occupied: false },
    },
    {
      name: 'vendor example "Heartbeat": free, 3.344 V, -10 °C, battery normal',
      fPort: 2,
      bytes: [0x00, 0xd3, 0xd8, 0x00, 0x59, 0x0b],
      want: {
        frameType: 'heartbeat',
        occupied: false,
        batteryVolts: 3.344,
        batteryStatus: 'OK',
        temperatureC: -10,
      },
    },
    {
      name: 'heartbeat: occupied, 2.96 V at 20 °C is LOW (warm thresholds 3000/2900 mV)',
      fPort: 2,
      bytes: [0x01, 115, 20],
      want: {
        frameType: 'heartbeat',
        occupied: true,
        batteryVolts: 2.96,
        batteryStatus: 'LOW',
        temperatureC: 20,
      },
    },
    {
      name: 'heartbeat: 2.86 V at 20 °C is CRITICAL',
      fPort: 2,
      bytes: [0x00, 90, 20],
      want: {
        frameType: 'heartbeat',
        occupied: false,
        batteryVolts: 2.86,
        batteryStatus: 'CRITICAL',
        temperatureC: 20,
      },
    },
    {
      name: 'heartbeat: 2.86 V at -10 °C is only LOW (cold thresholds 2900/2800 mV)',
      fPort: 2,
      bytes: [0x00, 90, 0xd8],
      want: {
        frameType: 'heartbeat',
        occupied: false,
        batteryVolts: 2.86,
        batteryStatus: 'LOW',
        temperatureC: -10,
      },
    },
    {
      name: 'vendor example "Startup": firmware 2.4.9, power-on, free',
      fPort: 3,
      bytes: [0x02, 0x04, 0x09, 0x02, 0x00],
      want: { ...none, frameType: 'startup', occupied: false },
    },
    {
      name: 'vendor example "User Registration" (fPort 10): no occupancy relied on',
      fPort: 10,
      bytes: [0xd1, 0x20, 0x1f, 0x34, 0x56, 0x78],
      want: { ...none, frameType: 'tag-registration' },
    },
  ])('$name', ({ fPort, bytes, want }) => {
    expect(decodeNwaveNps405(fPort, Buffer.from(bytes))).toEqual(want);
  });

  it.each([
    { name: 'unknown fPort 7', fPort: 7, bytes: [0x01] },
    { name: 'empty parking status', fPort: 1, bytes: [] },
    { name: 'heartbeat without temperature', fPort: 2, bytes: [0x00, 0xd3] },
    { name: 'startup without occupancy byte', fPort: 3, bytes: [0x02, 0x04, 0x09, 0x02] },
  ])('refuses $name with DECODE_FAILED', ({ fPort, bytes }) => {
    let thrown: unknown;
    try {
      decodeNwaveNps405(fPort, Buffer.from(bytes));
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'DECODE_FAILED')).toBe(true);
  });
});
