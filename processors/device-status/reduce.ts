import type { DeviceStatusRecord } from '../../schemas/avro/records.js';

/**
 * Device status reducer (pure: no I/O imports, no clock). One ChirpStack status event (the device's DevStatusAns,
 * parking.device-status.v1) becomes one `device_status` row, keyed `(tenant_id, dev_eui, time)`.
 *
 * Promises (times are epoch ms):
 * - `time` and `lastSeenAt` are the event's network time: the device answered then.
 * - `batteryPercent` is ChirpStack's batteryLevel (0–100) when the device is not externally powered and the level
 *   is known; null otherwise (on mains the device reports no level, and ChirpStack's 0 would read as "empty").
 * - `margin` (dB) and `externalPower` are copied. The row's uplink metrics (volts, RSSI, SNR, temperature) are
 *   null: a status event carries none of them (they are in `uplinks`).
 * - A record outside its contract (batteryLevel not a number in 0–100, margin not an integer) is `invalid`, with
 *   the reason: the I/O side dead-letters it instead of writing a wrong row.
 */
export interface DeviceStatusRow {
  tenantId: string;
  devEui: string;
  time: number;
  batteryPercent: number | null;
  margin: number;
  externalPower: boolean;
  lastSeenAt: number;
}

export type DeviceStatusResult = { kind: 'row'; row: DeviceStatusRow } | { kind: 'invalid'; reason: string };

export function reduceDeviceStatus(record: DeviceStatusRecord): DeviceStatusResult {
  const level = record.batteryLevel;
  if (level !== null && !(Number.isFinite(level) && level >= 0 && level <= 100))
    return { kind: 'invalid', reason: `batteryLevel ${level} is not a percentage (0-100)` };
  if (!Number.isInteger(record.margin))
    return { kind: 'invalid', reason: `margin ${record.margin} is not an integer (dB)` };
  return {
    kind: 'row',
    row: {
      tenantId: record.tenantId,
      devEui: record.devEui,
      time: record.time,
      batteryPercent: record.externalPowerSource ? null : level,
      margin: record.margin,
      externalPower: record.externalPowerSource,
      lastSeenAt: record.time,
    },
  };
}
