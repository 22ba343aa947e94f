import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { decodeBrowanTbms100 } from './browan-tbms100.js';

const status = (occupied: boolean, batteryVolts: number, temperatureC: number) => ({
  frameType: 'status',
  occupied,
  batteryVolts,
  batteryStatus: null,
  temperatureC,
});

describe('Browan TBMS100 codec', () => {
  it.each([
    {
      // Vendor example "Occupied": https://github.com/TheThingsNetwork/lorawan-devices/blob/master/vendor/browan/tbms100-codec.yaml
      // (battery 3.6, temperatureBoard 20, time 4, count 96476); layout per the Browan reference manual
      // https://cdn.shopify.com/s/files/1/0447/5633/6807/files/RM_Motion_Sensor_PIR__20200506_BQW_02_0006.pdf §4.1.2
      name: 'vendor example: occupied, 3.6 V, 20 °C',
      hex: '01bb340400dc7801',
      want: status(true, 3.6, 20),
    },
    {
      name: 'free, lowest battery code 2.5 V, coldest board -32 °C',
      hex: '0000000000000000',
      want: status(false, 2.5, -32),
    },
    {
      name: 'reserved bits set are ignored',
      hex: 'fef0a0ffffffffff',
      want: status(false, 2.5, 0),
    },
    { name: 'the simulator frame', hex: '010b350000000000', want: status(true, 3.6, 21) },
  ])('$name', ({ hex, want }) => {
    expect(decodeBrowanTbms100(102, Buffer.from(hex, 'hex'))).toEqual(want);
  });

  it.each([
    // Vendor example "Unknown FPort" (same tbms100-codec.yaml): fPort 42, bytes [0x01] -> error.
    { name: 'vendor example: unknown fPort 42', fPort: 42, hex: '01' },
    { name: 'truncated frame of 3 bytes', fPort: 102, hex: '010b35' },
    { name: 'empty frame', fPort: 102, hex: '' },
  ])('refuses $name with DECODE_FAILED', ({ fPort, hex }) => {
    let thrown: unknown;
    try {
      decodeBrowanTbms100(fPort, Buffer.from(hex, 'hex'));
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'DECODE_FAILED')).toBe(true);
  });
});
