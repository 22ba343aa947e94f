import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import type { DeviceStatusRecord } from '../../schemas/avro/records.js';
import { reduceDeviceStatus, type DeviceStatusRow } from './reduce.js';

/**
 * Applies a batch of status records inside the runtime's transaction (processors/runtime/processor.ts), as the
 * pipeline role: one multi-row INSERT for the whole batch (unnest, a named statement), ON CONFLICT DO NOTHING on
 * the primary key (tenant_id, dev_eui, time), so a replay (another group, a reset offset) writes nothing twice
 * and the first row of a key wins. A record outside its contract fails the batch non-retriably with
 * PAYLOAD_INVALID: the runtime then applies the batch record by record and dead-letters only that record.
 * Returns the rows it offered (the inserted ones plus those already there); no outbox (nothing leaves).
 */
export async function applyDeviceStatus(
  client: PoolClient,
  records: readonly DeviceStatusRecord[],
): Promise<{ rows: DeviceStatusRow[] }> {
  const rows: DeviceStatusRow[] = [];
  for (const record of records) {
    const result = reduceDeviceStatus(record);
    if (result.kind === 'invalid')
      throw new PlatformError(
        'PAYLOAD_INVALID',
        `device status ${record.eventId} of ${record.devEui}: ${result.reason}`,
      );
    rows.push(result.row);
  }
  await insertRows(client, rows);
  return { rows };
}

async function insertRows(client: PoolClient, rows: readonly DeviceStatusRow[]): Promise<void> {
  if (rows.length === 0) return;
  await client.query({
    name: 'device-status-insert',
    text: `INSERT INTO device_status (tenant_id, time, dev_eui, battery_percent, margin, external_power, last_seen_at)
     SELECT t, to_timestamp(tm / 1000.0), d, b, m, x, to_timestamp(ls / 1000.0)
       FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::real[], $5::int[], $6::bool[], $7::float8[])
            AS s(t, tm, d, b, m, x, ls)
     ON CONFLICT (tenant_id, dev_eui, time) DO NOTHING`,
    values: [
      rows.map((r) => r.tenantId),
      rows.map((r) => r.time),
      rows.map((r) => r.devEui),
      rows.map((r) => r.batteryPercent),
      rows.map((r) => r.margin),
      rows.map((r) => r.externalPower),
      rows.map((r) => r.lastSeenAt),
    ],
  });
}
