import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { defaultDisplayPolicy, type DisplayKind, type Look } from '../display/reduce.js';
import { encodeDisplay, type DisplayCodes, type DisplayModel } from './encoders.js';

const looks = defaultDisplayPolicy.looks;
const steady = (colour: Look['colour']): Look => ({ colour, blink: false });

describe('encodeDisplay', () => {
  it.each<{
    name: string;
    model: DisplayModel;
    kind: DisplayKind;
    look: Look;
    codes?: DisplayCodes;
    fPort: number;
    hex: string;
  }>([
    {
      name: 'Busylight red steady: R, B, G then on 1 s, off 0',
      model: 'kuando-busylight',
      kind: 'occupied',
      look: steady([255, 0, 0]),
      fPort: 15,
      hex: 'ff00006400',
    },
    {
      name: 'Busylight green goes in the third byte',
      model: 'kuando-busylight',
      kind: 'free',
      look: steady([0, 255, 0]),
      fPort: 15,
      hex: '0000ff6400',
    },
    {
      name: 'Busylight blue goes in the second byte',
      model: 'kuando-busylight',
      kind: 'reserved',
      look: steady([0, 0, 255]),
      fPort: 15,
      hex: '00ff006400',
    },
    {
      name: 'Busylight blink: 0.5 s on, 0.5 s off in hundredths',
      model: 'kuando-busylight',
      kind: 'reserved-soon',
      look: looks['reserved-soon'],
      fPort: 15,
      hex: '00ff003232',
    },
    {
      name: 'Heltec free is 01 on fPort 1',
      model: 'heltec-1byte',
      kind: 'free',
      look: looks.free,
      fPort: 1,
      hex: '01',
    },
    {
      name: 'Heltec occupied is 02',
      model: 'heltec-1byte',
      kind: 'occupied',
      look: looks.occupied,
      fPort: 1,
      hex: '02',
    },
    {
      name: 'Heltec reserved is 03',
      model: 'heltec-1byte',
      kind: 'reserved',
      look: looks.reserved,
      fPort: 1,
      hex: '03',
    },
    {
      name: 'Heltec reserved-soon shows reserved',
      model: 'heltec-1byte',
      kind: 'reserved-soon',
      look: looks.reserved,
      fPort: 1,
      hex: '03',
    },
    {
      name: 'Heltec maintenance shows occupied (no code of its own)',
      model: 'heltec-1byte',
      kind: 'maintenance',
      look: looks.maintenance,
      fPort: 1,
      hex: '02',
    },
    {
      name: 'a per-device code overrides the default, on the default fPort',
      model: 'heltec-1byte',
      kind: 'maintenance',
      look: looks.maintenance,
      codes: { maintenance: { payloadHex: '0x04' } },
      fPort: 1,
      hex: '04',
    },
    {
      name: 'a per-device code may name its own fPort',
      model: 'kuando-busylight',
      kind: 'free',
      look: looks.free,
      codes: { free: { payloadHex: 'AA BB', fPort: 20 } },
      fPort: 20,
      hex: 'aabb',
    },
    {
      name: 'kinds without a per-device code keep the default',
      model: 'heltec-1byte',
      kind: 'free',
      look: looks.free,
      codes: { maintenance: { payloadHex: '04' } },
      fPort: 1,
      hex: '01',
    },
  ])('$name', ({ model, kind, look, codes, fPort, hex }) => {
    expect(encodeDisplay(model, kind, look, codes)).toEqual({ fPort, payloadHex: hex });
  });

  it('a malformed per-device code is an ENCODE_FAILED error, not a silent default', () => {
    const call = () => encodeDisplay('heltec-1byte', 'free', looks.free, { free: { payloadHex: 'abc' } });
    expect(call).toThrow();
    try {
      call();
    } catch (error) {
      expect(isPlatformError(error, 'ENCODE_FAILED')).toBe(true);
    }
  });
});
