import { byteAt, requireLength, unknownPort } from './frame.js';
import type { Codec, DecodedReading } from './types.js';

const ports = [1, 2, 3, 4, 5, 6] as const;

const withoutOccupancy = (frameType: string): DecodedReading => ({
  frameType,
  occupied: null,
  batteryVolts: null,
  batteryStatus: null,
  temperatureC: null,
});

/**
 * Bosch Parking Lot Sensor (TPS110), per Bosch's "Parking Lot Sensor communication interface" and the examples
 * in the LoRaWAN Device Repository (vendor/bosch/tps110-0292-codec.yaml):
 *   fPort 1  parking status: byte 0 bit 0 occupied
 *   fPort 2  heartbeat: byte 0 bit 0 occupied; byte 1, when present (firmware ≥ 0.29), temperature as int8 °C
 *   fPort 3  start-up, 17 bytes: three debug codes, firmware version (bytes 12-14), reset cause (byte 15),
 *            byte 16 bit 0 occupied
 *   fPorts 4-6  device information, device usage, debug: no occupancy (null)
 * The sensor reports no battery voltage in these frames, so battery fields stay null.
 */
export const decodeBoschTps110: Codec = (fPort, payload) => {
  switch (fPort) {
    case 1:
      requireLength('bosch-tps110', fPort, payload, 1);
      return { ...withoutOccupancy('parking-status'), occupied: (byteAt(payload, 0) & 0x01) === 1 };
    case 2:
      requireLength('bosch-tps110', fPort, payload, 1);
      return {
        ...withoutOccupancy('heartbeat'),
        occupied: (byteAt(payload, 0) & 0x01) === 1,
        temperatureC: payload.length >= 2 ? payload.readInt8(1) : null,
      };
    case 3:
      requireLength('bosch-tps110', fPort, payload, 17);
      return { ...withoutOccupancy('startup'), occupied: (byteAt(payload, 16) & 0x01) === 1 };
    case 4:
      requireLength('bosch-tps110', fPort, payload, 1);
      return withoutOccupancy('device-information');
    case 5:
      requireLength('bosch-tps110', fPort, payload, 1);
      return withoutOccupancy('device-usage');
    case 6:
      requireLength('bosch-tps110', fPort, payload, 1);
      return withoutOccupancy('debug');
    default:
      throw unknownPort('bosch-tps110', fPort, ports);
  }
};
