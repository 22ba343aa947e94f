import { PlatformError } from '../../lib/errors.js';
import { decodeBrowanTbms100 } from './browan-tbms100.js';
import type { Codec, DecodedReading } from './types.js';

export type { DecodedReading } from './types.js';

/** Codecs by the name stored in sensor_devices.codec. */
const codecs: Record<string, Codec> = {
  'browan-tbms100': decodeBrowanTbms100,
};

export const codecNames = Object.keys(codecs);

/**
 * Decodes one uplink. ChirpStack's own decoded `object` wins when present and carries an occupancy field
 * (the device profile's codec already ran); otherwise the device's configured codec reads the raw bytes.
 */
export function decodeReading(
  codecName: string,
  fPort: number,
  payload: Buffer,
  object: Record<string, unknown> | undefined,
): { codec: string; reading: DecodedReading } {
  if (object && typeof object['occupied'] === 'boolean') {
    return {
      codec: 'chirpstack-object',
      reading: {
        occupied: object['occupied'],
        batteryVolts: typeof object['batteryVolts'] === 'number' ? object['batteryVolts'] : null,
        temperatureC: typeof object['temperatureC'] === 'number' ? object['temperatureC'] : null,
      },
    };
  }
  const codec = codecs[codecName];
  if (!codec) throw new PlatformError('DECODE_FAILED', `no codec named ${codecName}`);
  return { codec: codecName, reading: codec(fPort, payload) };
}
