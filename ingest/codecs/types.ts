/**
 * Battery condition as the vendor defines it: OK, LOW (plan a replacement) or CRITICAL (replace now). Only codecs
 * whose vendor documents thresholds set it; the others leave it null rather than invent one.
 */
export type BatteryStatus = 'OK' | 'LOW' | 'CRITICAL';

/**
 * What a codec extracts from one uplink. `null` means the frame does not carry that value: a heartbeat or
 * start-up frame of a sensor that reports occupancy only on change may carry none, and the caller must then
 * keep the last known state rather than assume free. The raw payload is kept by the bridge, not here.
 */
export interface DecodedReading {
  /** Vendor frame kind in kebab-case, e.g. parking-status, heartbeat, startup; null when unknown. */
  frameType: string | null;
  occupied: boolean | null;
  /** Battery voltage in volts. */
  batteryVolts: number | null;
  batteryStatus: BatteryStatus | null;
  /** Temperature in °C (sensor board). */
  temperatureC: number | null;
}

/** A sensor codec: pure, synchronous, throws PlatformError('DECODE_FAILED') on a payload it cannot read. */
export type Codec = (fPort: number, payload: Buffer) => DecodedReading;
