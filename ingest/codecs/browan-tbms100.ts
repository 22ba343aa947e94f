import { byteAt, requireLength, unknownPort } from './frame.js';
import type { Codec } from './types.js';

/**
 * Browan TBMS100 (motion/occupancy sensor), status frame on fPort 102, 8 bytes, per the vendor's reference
 * manual (RM Motion Sensor PIR, BQW_02_0006, §4.1.2 Payload):
 *   byte 0 bit 0      occupied (1) / free (0); bits 1-7 reserved
 *   byte 1 bits 0-3   battery, (25 + n) / 10 V; bits 4-7 reserved
 *   byte 2 bits 0-6   board temperature, n - 32 °C; bit 7 reserved
 *   bytes 3-4         minutes since the last state change (uint16 LE)
 *   bytes 5-7         event count (uint24 LE)
 * The manual states no battery thresholds, so batteryStatus stays null.
 *
 * Checked against the vendor doc: the bit layout of the previous implementation was right; it accepted frames of
 * 3 bytes, which the device never sends, so a truncated frame decoded silently. It now requires all 8 bytes.
 */
export const decodeBrowanTbms100: Codec = (fPort, payload) => {
  if (fPort !== 102) throw unknownPort('browan-tbms100', fPort, [102]);
  requireLength('browan-tbms100', fPort, payload, 8);
  return {
    frameType: 'status',
    occupied: (byteAt(payload, 0) & 0x01) === 1,
    batteryVolts: (25 + (byteAt(payload, 1) & 0x0f)) / 10,
    batteryStatus: null,
    temperatureC: (byteAt(payload, 2) & 0x7f) - 32,
  };
};
