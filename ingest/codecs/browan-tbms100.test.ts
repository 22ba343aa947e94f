import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { decodeBrowanTbms100 } from './browan-tbms100.js';

describe('Browan TBMS100 codec', () => {
  it.each([
    {
      name: 'occupied, 3.6 V, 21 °C',
      hex: '010b35000010000000',
      want: { occupied: true, batteryVolts: 3.6, temperatureC: 21 },
    },
    {
      name: 'free, 3.5 V, 20 °C',
      hex: '000a340a0011000000',
      want: { occupied: false, batteryVolts: 3.5, temperatureC: 20 },
    },
    {
      name: 'upper bits ignored',
      hex: 'fef0a0',
      want: { occupied: false, batteryVolts: 2.5, temperatureC: 0 },
    },
  ])('$name', ({ hex, want }) => {
    expect(decodeBrowanTbms100(102, Buffer.from(hex, 'hex'))).toEqual(want);
  });

  it.each([
    { name: 'wrong fPort', fPort: 1, hex: '010b35' },
    { name: 'too short', fPort: 102, hex: '01' },
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
