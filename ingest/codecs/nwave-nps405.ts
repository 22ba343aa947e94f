import { byteAt, requireLength, unknownPort } from './frame.js';
import type { BatteryStatus, Codec } from './types.js';

const ports = [1, 2, 3, 6, 10] as const;

/**
 * Nwave NPS405 parking sensor (surface and flush mount), per Nwave's application protocol ("Nwave LoRaWAN
 * Parking Sensor - Getting Started", §4.2) and the examples Nwave published in the LoRaWAN Device Repository
 * (vendor/nwave/nps405-codec.yaml):
 *   fPort 1  parking status: byte 0 bit 0 occupied; bits 1-7 compressed duration of the previous state
 *   fPort 2  heartbeat: byte 0 bit 0 occupied, bits 1-7 hardware health mask; byte 1 battery, 2500 + 4·n mV;
 *            byte 2 temperature, int8 / 2 + 10 °C
 *   fPort 3  start-up: bytes 0-2 firmware version, byte 3 reset cause, byte 4 bit 0 occupied
 *   fPort 6  debug, fPort 10 SDI tag registration: no occupancy we rely on (null)
 * Battery status uses the vendor's thresholds, which depend on temperature because a cold lithium cell sags:
 * at -5 °C and above LOW below 3000 mV and CRITICAL below 2900 mV; below -5 °C LOW below 2900 and CRITICAL
 * below 2800.
 */
export const decodeNwaveNps405: Codec = (fPort, payload) => {
  switch (fPort) {
    case 1:
      requireLength('nwave-nps405', fPort, payload, 1);
      return {
        frameType: 'parking-status',
        occupied: occupiedBit(payload, 0),
        batteryVolts: null,
        batteryStatus: null,
        temperatureC: null,
      };
    case 2: {
      requireLength('nwave-nps405', fPort, payload, 3);
      const millivolts = 2500 + 4 * byteAt(payload, 1);
      const temperatureC = payload.readInt8(2) / 2 + 10;
      return {
        frameType: 'heartbeat',
        occupied: occupiedBit(payload, 0),
        batteryVolts: millivolts / 1000,
        batteryStatus: batteryStatus(millivolts, temperatureC),
        temperatureC,
      };
    }
    case 3:
      requireLength('nwave-nps405', fPort, payload, 5);
      return {
        frameType: 'startup',
        occupied: occupiedBit(payload, 4),
        batteryVolts: null,
        batteryStatus: null,
        temperatureC: null,
      };
    case 6:
    case 10:
      requireLength('nwave-nps405', fPort, payload, 1);
      return {
        frameType: fPort === 6 ? 'debug' : 'tag-registration',
        occupied: null,
        batteryVolts: null,
        batteryStatus: null,
        temperatureC: null,
      };
    default:
      throw unknownPort('nwave-nps405', fPort, ports);
  }
};

function occupiedBit(payload: Buffer, index: number): boolean {
  return (byteAt(payload, index) & 0x01) === 1;
}

function batteryStatus(millivolts: number, temperatureC: number): BatteryStatus {
  const cold = temperatureC < -5;
  const low = cold ? 2900 : 3000;
  const critical = cold ? 2800 : 2900;
  if (millivolts < critical) return 'CRITICAL';
  if (millivolts < low) return 'LOW';
  return 'OK';
}
