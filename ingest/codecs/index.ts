import { PlatformError } from '../../lib/errors.js';
import { decodeBoschTps110 } from './bosch-tps110.js';
import { decodeBrowanTbms100 } from './browan-tbms100.js';
import { decodeNwaveNps405 } from './nwave-nps405.js';
import type { BatteryStatus, Codec, DecodedReading } from './types.js';

export type { BatteryStatus, Codec, DecodedReading } from './types.js';

/** Codecs by the name stored in sensor_devices.codec (one per device type). */
const codecs: Record<string, Codec> = {
  'browan-tbms100': decodeBrowanTbms100,
  'nwave-nps405': decodeNwaveNps405,
  'bosch-tps110': decodeBoschTps110,
};

export const codecNames = Object.keys(codecs);

/** The codec name reported when ChirpStack's device-profile codec already decoded the frame. */
export const chirpstackObjectCodec = 'chirpstack-object';

/**
 * Decodes one uplink. ChirpStack's own decoded `object` wins when present and carries an occupancy field
 * (the device profile's codec already ran, and it is what the operator configured); otherwise the device's
 * configured codec reads the raw bytes. Throws DECODE_FAILED for an unknown codec name or a frame the codec
 * cannot read.
 */
export function decodeReading(
  codecName: string,
  fPort: number,
  payload: Buffer,
  object: Record<string, unknown> | undefined,
): { codec: string; reading: DecodedReading } {
  const fromObject = object ? readingFromObject(object) : null;
  if (fromObject) return { codec: chirpstackObjectCodec, reading: fromObject };
  const codec = codecs[codecName];
  if (!codec) throw new PlatformError('DECODE_FAILED', `no codec named ${codecName}`);
  return { codec: codecName, reading: codec(fPort, payload) };
}

/*
 * Field names that public ChirpStack/TTN decoders use for the same quantity, in order of preference. Decoders
 * written for this platform use the first; the others are what vendor decoders in the LoRaWAN Device Repository
 * emit (Nwave: occupied, battery_voltage, battery_health, temperature; Browan: status, battery,
 * temperatureBoard; Bosch: occupied, temperature).
 */
const occupancyFields = ['occupied', 'occupancy', 'isOccupied', 'parkingStatus', 'parking_status', 'status'];
const voltFields = ['batteryVolts', 'batteryVoltage', 'battery_voltage', 'battVolt', 'battery'];
const millivoltFields = ['batteryMv', 'battery_mv', 'batteryMillivolts'];
const batteryStatusFields = ['batteryStatus', 'battery_status', 'batteryHealth', 'battery_health'];
const temperatureFields = ['temperatureC', 'temperature', 'temperatureBoard', 'temp'];
const frameTypeFields = ['frameType', 'type'];

/**
 * Reads a reading from ChirpStack's decoded object, or null when it carries no recognisable occupancy (then the
 * raw bytes are decoded instead). Occupancy may be a boolean, 0/1, or a word (occupied/free/vacant); `status`
 * counts only as 0/1 because vendors use it for other things too.
 */
export function readingFromObject(object: Record<string, unknown>): DecodedReading | null {
  const occupied = firstOf(object, occupancyFields, toOccupancy);
  if (occupied === null) return null;
  const volts = firstOf(object, voltFields, toVolts);
  const millivolts = firstOf(object, millivoltFields, toFinite);
  return {
    frameType: firstOf(object, frameTypeFields, (v) => (typeof v === 'string' && v !== '' ? v : null)),
    occupied,
    batteryVolts: volts ?? (millivolts === null ? null : millivolts / 1000),
    batteryStatus: firstOf(object, batteryStatusFields, toBatteryStatus),
    temperatureC: firstOf(object, temperatureFields, toFinite),
  };
}

function firstOf<T>(
  object: Record<string, unknown>,
  names: string[],
  read: (v: unknown, name: string) => T | null,
) {
  for (const name of names) {
    if (!Object.hasOwn(object, name)) continue;
    const value = read(object[name], name);
    if (value !== null) return value;
  }
  return null;
}

function toOccupancy(value: unknown, name: string): boolean | null {
  if (typeof value === 'boolean') return name === 'status' ? null : value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value !== 'string' || name === 'status') return null;
  const word = value.trim().toLowerCase();
  if (['occupied', 'true', '1', 'busy'].includes(word)) return true;
  if (['free', 'vacant', 'false', '0', 'empty'].includes(word)) return false;
  return null;
}

function toFinite(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Volt-named fields hold volts in most decoders, millivolts in some and a percentage in others (`battery`):
 * up to 20 is volts, 1000 and above millivolts, anything between is ambiguous and ignored.
 */
function toVolts(value: unknown): number | null {
  const n = toFinite(value);
  if (n === null || n <= 0) return null;
  if (n <= 20) return n;
  return n >= 1000 ? n / 1000 : null;
}

function toBatteryStatus(value: unknown): BatteryStatus | null {
  if (typeof value !== 'string') return null;
  const word = value.trim().toLowerCase();
  if (word === 'ok' || word === 'normal' || word === 'good') return 'OK';
  if (word === 'low') return 'LOW';
  if (word === 'critical') return 'CRITICAL';
  return null;
}
