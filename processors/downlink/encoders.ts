import { PlatformError } from '../../lib/errors.js';
import type { DisplayKind, Look } from '../display/reduce.js';

/**
 * Display payload encoders. Pure: a display kind and look in, fPort and payload bytes (hex) out.
 *
 * Kuando Busylight (LoRaWAN, class C): fPort 15, five bytes `[red, blue, green, on, off]` — note blue before
 * green. Byte order from Plenom's "Technical Documentation kuando IoT Busylight v3.1.1 – LoRa"
 * (https://cdn.shopify.com/s/files/1/0447/5633/6807/files/Technical_Documentation_kuando_IoT_Busylight_v3.1.1_-_LoRa.pdf:
 * "Byte 0: Red Color intensity (0..255), Byte 1: Blue ..."), and the same order in the device's uplink echo
 * decoded by https://github.com/TheThingsNetwork/lorawan-devices/blob/master/vendor/plenom/busylight.js
 * (lastcolor_red, lastcolor_blue, lastcolor_green, lastcolor_ontime, lastcolor_offtime).
 * On/off duration unit: hundredths of a second as we read that document; the excerpt we could check stops
 * before that line, so the unit lives in one constant (BUSYLIGHT_TICK_MS) to correct in one place. Off = 0
 * means steady light.
 *
 * Heltec one-byte display: fPort 1, 01 free, 02 occupied, 03 reserved. Decisions where the device has no code:
 * `reserved-soon` shows as reserved (03); `maintenance` shows as occupied (02), which keeps drivers away.
 *
 * Per-device display codes (from the database) override the defaults for the kinds they list.
 */
export type DisplayModel = 'kuando-busylight' | 'heltec-1byte';

/** Per-device codes: hex payload per kind, optionally on another fPort. */
export type DisplayCodes = Partial<Record<DisplayKind, { payloadHex: string; fPort?: number }>>;

export interface EncodedDownlink {
  fPort: number;
  /** Lower-case hex, no separators. */
  payloadHex: string;
}

export const BUSYLIGHT_FPORT = 15;
export const BUSYLIGHT_TICK_MS = 10;
/** Blink cadence when a look blinks: 0.5 s on, 0.5 s off. */
export const BUSYLIGHT_BLINK_MS = { on: 500, off: 500 } as const;
/** Steady light: the on time is irrelevant while off is 0; 1 s keeps it a valid cadence. */
const BUSYLIGHT_STEADY_MS = { on: 1_000, off: 0 } as const;

export const HELTEC_FPORT = 1;
const heltecCodes: Record<DisplayKind, number> = {
  free: 0x01,
  occupied: 0x02,
  reserved: 0x03,
  'reserved-soon': 0x03,
  maintenance: 0x02,
};

export function encodeDisplay(
  model: DisplayModel,
  kind: DisplayKind,
  look: Look,
  codes: DisplayCodes = {},
): EncodedDownlink {
  const custom = codes[kind];
  const fallback = defaultEncoding(model, kind, look);
  if (!custom) return fallback;
  return { fPort: custom.fPort ?? fallback.fPort, payloadHex: normaliseHex(custom.payloadHex) };
}

function defaultEncoding(model: DisplayModel, kind: DisplayKind, look: Look): EncodedDownlink {
  if (model === 'heltec-1byte') return { fPort: HELTEC_FPORT, payloadHex: hex([heltecCodes[kind]]) };
  const [red, green, blue] = look.colour;
  const cadence = look.blink ? BUSYLIGHT_BLINK_MS : BUSYLIGHT_STEADY_MS;
  return {
    fPort: BUSYLIGHT_FPORT,
    payloadHex: hex([red, blue, green, ticks(cadence.on), ticks(cadence.off)]),
  };
}

function ticks(ms: number): number {
  return Math.min(255, Math.max(0, Math.round(ms / BUSYLIGHT_TICK_MS)));
}

function hex(bytes: number[]): string {
  return bytes
    .map((b) => (Math.min(255, Math.max(0, Math.round(b))) | 0).toString(16).padStart(2, '0'))
    .join('');
}

/**
 * Accepts "0A 0b", "0x0a0b" or "0a0b". A malformed stored code throws PlatformError('ENCODE_FAILED'), not
 * retriable: it is bad configuration and retrying cannot fix it.
 */
export function normaliseHex(input: string): string {
  const cleaned = input.replace(/^0x/i, '').replace(/[\s:]/g, '').toLowerCase();
  if (cleaned.length === 0 || cleaned.length % 2 !== 0 || !/^[0-9a-f]+$/.test(cleaned))
    throw new PlatformError('ENCODE_FAILED', `display code is not hex bytes: ${JSON.stringify(input)}`);
  return cleaned;
}
