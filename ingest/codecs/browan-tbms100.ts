import { PlatformError } from '../../lib/errors.js';
import type { Codec } from './types.js';

/**
 * Browan TBMS100 parking sensor, fPort 102, 8 bytes:
 * byte 0 bit 0: occupied; byte 1 bits 0-3: battery, (25 + n) / 10 V; byte 2 bits 0-6: temperature, n - 32 °C;
 * bytes 3-4: minutes since the last state change (uint16 LE); bytes 5-7: event count (uint24 LE).
 */
export const decodeBrowanTbms100: Codec = (fPort, payload) => {
  if (fPort !== 102)
    throw new PlatformError('DECODE_FAILED', `browan-tbms100: unexpected fPort ${fPort} (want 102)`);
  if (payload.length < 3) {
    throw new PlatformError(
      'DECODE_FAILED',
      `browan-tbms100: payload has ${payload.length} bytes (want at least 3)`,
    );
  }
  const status = payload[0] ?? 0;
  const battery = payload[1] ?? 0;
  const temperature = payload[2] ?? 0;
  return {
    occupied: (status & 0x01) === 1,
    batteryVolts: (25 + (battery & 0x0f)) / 10,
    temperatureC: (temperature & 0x7f) - 32,
  };
};
