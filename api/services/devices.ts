import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import { pageSql } from '../http/pagination.js';
import type { ListInput } from './sites.js';
import type { DeviceKind } from './spaces.js';

/**
 * Sensors and displays of one tenant (two tables, one list), orphans, device types and gateways: the one
 * implementation behind v5 today and the v6 device routes to come. Runs inside the caller's unit of work.
 */
export interface DeviceRow {
  /** The DevEUI (devices are keyed by it; `id` so the pager can make cursors). */
  id: string;
  dev_eui: string;
  kind: DeviceKind;
  name: string | null;
  device_type: string | null;
  status: 'active' | 'inactive' | 'decommissioned';
  space_id: string | null;
  space_code: string | null;
  site_id: string | null;
  last_seen_at: Date | null;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
  sort_key: string;
}

const devices = `(
  SELECT d.dev_eui, 'sensor' AS kind, d.name, d.device_type, d.status, d.space_id, d.last_seen_at, d.created_at,
         d.updated_at, d.archived_at
    FROM sensor_devices d WHERE d.tenant_id = $1
  UNION ALL
  SELECT d.dev_eui, 'display', d.name, d.device_type, d.status, d.space_id, d.last_seen_at, d.created_at,
         d.updated_at, d.archived_at
    FROM display_devices d WHERE d.tenant_id = $1
) d LEFT JOIN spaces s ON s.tenant_id = $1 AND s.id = d.space_id`;

const select = `SELECT d.dev_eui AS id, d.dev_eui, d.kind, d.name, d.device_type, d.status, d.space_id,
  s.code AS space_code, s.site_id, d.last_seen_at, d.created_at, d.updated_at, d.archived_at`;

export const deviceSorts = {
  devEui: 'd.dev_eui',
  createdAt: 'd.created_at',
  lastSeenAt: 'd.last_seen_at',
} as const;
export type DeviceSort = keyof typeof deviceSorts;

export async function listDevices(
  db: PoolClient,
  tenantId: string,
  query: ListInput<DeviceSort> & { kind?: DeviceKind | undefined; includeArchived?: boolean | undefined },
): Promise<DeviceRow[]> {
  const page = pageSql(deviceSorts, query, 5, 'd.dev_eui');
  const { rows } = await db.query<DeviceRow>(
    `${select}, ${page.sortKey} FROM ${devices}
      WHERE ($2::text IS NULL OR d.kind = $2) AND ($3 OR d.archived_at IS NULL) AND ${page.after}
      ORDER BY ${page.orderBy} NULLS LAST LIMIT ${page.fetch} OFFSET $4`,
    [tenantId, query.kind ?? null, query.includeArchived ?? false, query.offset ?? 0, ...page.params],
  );
  return rows;
}

export async function getDevice(db: PoolClient, tenantId: string, devEui: string): Promise<DeviceRow> {
  const { rows } = await db.query<DeviceRow>(
    `${select}, d.dev_eui AS sort_key FROM ${devices} WHERE d.dev_eui = $2`,
    [tenantId, devEui.toUpperCase()],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such device');
  return rows[0];
}

/** A device's latest status answer (ChirpStack status event), from device_status (processors/device-status). */
export interface DeviceStatusRow {
  time: Date;
  battery_percent: number | null;
  margin: number | null;
  external_power: boolean | null;
}

/**
 * The device's latest device_status row, or null when it never answered a status request. One backward scan of
 * the primary key (tenant_id, dev_eui, time) per chunk until a row is found.
 */
export async function latestDeviceStatus(
  db: PoolClient,
  tenantId: string,
  devEui: string,
): Promise<DeviceStatusRow | null> {
  const { rows } = await db.query<DeviceStatusRow>(
    `SELECT time, battery_percent, margin, external_power FROM device_status
      WHERE tenant_id = $1 AND dev_eui = $2 ORDER BY time DESC LIMIT 1`,
    [tenantId, devEui.toUpperCase()],
  );
  return rows[0] ?? null;
}

const tables = { sensor: 'sensor_devices', display: 'display_devices' } as const;

/** Changes name, device type (model) and status (the fields present). */
export async function updateDevice(
  db: PoolClient,
  tenantId: string,
  devEui: string,
  body: {
    name?: string | null | undefined;
    deviceType?: string | null | undefined;
    status?: DeviceRow['status'] | undefined;
  },
): Promise<DeviceRow> {
  const device = await getDevice(db, tenantId, devEui);
  await db.query(
    `UPDATE ${tables[device.kind]} SET
       name = CASE WHEN $3 THEN $4 ELSE name END,
       device_type = CASE WHEN $5 THEN $6 ELSE device_type END,
       status = coalesce($7, status),
       updated_at = now()
     WHERE tenant_id = $1 AND dev_eui = $2`,
    [
      tenantId,
      device.dev_eui,
      'name' in body,
      body.name ?? null,
      'deviceType' in body,
      body.deviceType ?? null,
      body.status ?? null,
    ],
  );
  return getDevice(db, tenantId, device.dev_eui);
}

/** Takes the device out of service for good: decommissioned, unassigned, archived. Idempotent. */
export async function archiveDevice(db: PoolClient, tenantId: string, devEui: string): Promise<DeviceRow> {
  const device = await getDevice(db, tenantId, devEui);
  await db.query(
    `UPDATE ${tables[device.kind]} SET status = 'decommissioned', space_id = NULL,
       archived_at = coalesce(archived_at, now()), updated_at = now()
     WHERE tenant_id = $1 AND dev_eui = $2`,
    [tenantId, device.dev_eui],
  );
  return getDevice(db, tenantId, device.dev_eui);
}

/**
 * Deletes a device of the tenant (the row goes; its DevEUI may be registered again). The ChirpStack sync deletes it
 * there as well (a trigger marks it, schemas/sql/1734100000000_chirpstack-sync-deletes.sql). NOT_FOUND when the
 * tenant has no such device; CONFLICT while downlink jobs still name a display (archive it instead).
 */
export async function deleteDevice(db: PoolClient, tenantId: string, devEui: string): Promise<void> {
  const device = await getDevice(db, tenantId, devEui);
  await db.query(`DELETE FROM ${tables[device.kind]} WHERE tenant_id = $1 AND dev_eui = $2`, [
    tenantId,
    device.dev_eui,
  ]);
}

/** The codec a sensor gets when the caller names none: the TBMS100 the v5 platform shipped with. */
export const defaultSensorCodec = 'browan-tbms100';

/**
 * Registers a device of the tenant (a sensor needs a codec; `defaultSensorCodec` when none is given) and drops
 * it from the orphans. CONFLICT when the DevEUI is already registered (in any tenant).
 */
export async function registerDevice(
  db: PoolClient,
  tenantId: string,
  input: { devEui: string; kind: DeviceKind; codec?: string | undefined; deviceType?: string | undefined },
): Promise<DeviceRow> {
  const devEui = input.devEui.toUpperCase();
  if (input.kind === 'sensor')
    await db.query(
      'INSERT INTO sensor_devices (tenant_id, dev_eui, codec, device_type) VALUES ($1, $2, $3, $4)',
      [tenantId, devEui, input.codec ?? defaultSensorCodec, input.deviceType ?? null],
    );
  else
    await db.query('INSERT INTO display_devices (tenant_id, dev_eui, device_type) VALUES ($1, $2, $3)', [
      tenantId,
      devEui,
      input.deviceType ?? null,
    ]);
  await db.query('DELETE FROM orphan_devices WHERE tenant_id = $1 AND dev_eui = $2', [tenantId, devEui]);
  return getDevice(db, tenantId, devEui);
}

/** Whether the tenant has this device registered, and as what. */
export async function deviceKindOf(
  db: PoolClient,
  tenantId: string,
  devEui: string,
): Promise<DeviceKind | null> {
  const { rows } = await db.query<{ kind: DeviceKind }>(
    `SELECT 'sensor' AS kind FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2
     UNION ALL SELECT 'display' FROM display_devices WHERE tenant_id = $1 AND dev_eui = $2`,
    [tenantId, devEui.toUpperCase()],
  );
  return rows[0]?.kind ?? null;
}

export interface DeviceTypeRow {
  type_code: string;
  category: DeviceKind;
  name: string;
  manufacturer: string;
  model: string | null;
  codec: string | null;
  default_f_port: number | null;
}

/** The platform's device catalog (global, read-only to tenants). */
export async function listDeviceTypes(db: PoolClient): Promise<DeviceTypeRow[]> {
  const { rows } = await db.query<DeviceTypeRow>(
    'SELECT type_code, category, name, manufacturer, model, codec, default_f_port FROM device_types ORDER BY type_code',
  );
  return rows;
}

export interface OrphanRow {
  dev_eui: string;
  application_id: string | null;
  device_name: string | null;
  first_seen_at: Date;
  last_seen_at: Date;
  uplink_count: string;
  last_f_port: number | null;
  last_rssi: number | null;
  last_snr: number | null;
}

/** Devices seen on the tenant's ChirpStack applications but not registered, most recently seen first. */
export async function listOrphans(db: PoolClient, tenantId: string, limit: number): Promise<OrphanRow[]> {
  const { rows } = await db.query<OrphanRow>(
    `SELECT dev_eui, application_id, device_name, first_seen_at, last_seen_at, uplink_count::text AS uplink_count,
            last_f_port, last_rssi, last_snr
       FROM orphan_devices WHERE tenant_id = $1 ORDER BY last_seen_at DESC, dev_eui LIMIT $2`,
    [tenantId, limit],
  );
  return rows;
}

export async function deleteOrphan(db: PoolClient, tenantId: string, devEui: string): Promise<void> {
  const { rowCount } = await db.query('DELETE FROM orphan_devices WHERE tenant_id = $1 AND dev_eui = $2', [
    tenantId,
    devEui.toUpperCase(),
  ]);
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such orphan device');
}

/** Registers an orphan (NOT_FOUND when it is not one of the tenant's orphans). */
export async function adoptOrphan(
  db: PoolClient,
  tenantId: string,
  input: { devEui: string; kind: DeviceKind; codec?: string | undefined; deviceType?: string | undefined },
): Promise<DeviceRow> {
  const { rowCount } = await db.query(
    'SELECT 1 FROM orphan_devices WHERE tenant_id = $1 AND dev_eui = $2 FOR UPDATE',
    [tenantId, input.devEui.toUpperCase()],
  );
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such orphan device');
  return registerDevice(db, tenantId, input);
}

export interface GatewayRow {
  gw_eui: string;
  name: string;
  site_id: string | null;
  latitude: number | null;
  longitude: number | null;
  last_seen_at: Date | null;
  created_at: Date;
  online: boolean;
}

/** A gateway is online when it was seen within this many seconds. */
export const gatewayOnlineWithinS = 600;

const gatewaySelect = `SELECT gw_eui, name, site_id, latitude, longitude, last_seen_at, created_at,
  coalesce(last_seen_at > now() - make_interval(secs => ${gatewayOnlineWithinS}), false) AS online FROM gateways`;

export async function listGateways(db: PoolClient, tenantId: string, limit: number): Promise<GatewayRow[]> {
  const { rows } = await db.query<GatewayRow>(
    `${gatewaySelect} WHERE tenant_id = $1 ORDER BY gw_eui LIMIT $2`,
    [tenantId, limit],
  );
  return rows;
}

export async function getGateway(db: PoolClient, tenantId: string, gwEui: string): Promise<GatewayRow> {
  const { rows } = await db.query<GatewayRow>(`${gatewaySelect} WHERE tenant_id = $1 AND gw_eui = $2`, [
    tenantId,
    gwEui.toUpperCase(),
  ]);
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such gateway');
  return rows[0];
}

/** Deletes a gateway of the tenant, and (through the ChirpStack sync) from ChirpStack. NOT_FOUND when unknown. */
export async function deleteGateway(db: PoolClient, tenantId: string, gwEui: string): Promise<void> {
  const { rowCount } = await db.query('DELETE FROM gateways WHERE tenant_id = $1 AND gw_eui = $2', [
    tenantId,
    gwEui.toUpperCase(),
  ]);
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such gateway');
}

/** Gateways in total and online, and the tenant's uplinks received in the last 24 hours. */
export async function gatewaySummary(
  db: PoolClient,
  tenantId: string,
): Promise<{ total: number; online: number; uplinks24h: number }> {
  const { rows } = await db.query<{ total: number; online: number; uplinks24h: number }>(
    `SELECT (SELECT count(*)::int FROM gateways WHERE tenant_id = $1) AS total,
            (SELECT count(*)::int FROM gateways WHERE tenant_id = $1
               AND last_seen_at > now() - make_interval(secs => ${gatewayOnlineWithinS})) AS online,
            (SELECT count(*)::int FROM uplinks WHERE tenant_id = $1 AND time > now() - interval '24 hours')
              AS "uplinks24h"`,
    [tenantId],
  );
  return rows[0]!;
}

export const gatewaySorts = { gwEui: 'gw_eui', name: 'name', lastSeenAt: 'last_seen_at' } as const;
export type GatewaySort = keyof typeof gatewaySorts;

/** One page of the tenant's gateways (v6), optionally only those online or offline. */
export async function pageGateways(
  db: PoolClient,
  tenantId: string,
  query: ListInput<GatewaySort> & { online?: boolean | undefined; siteId?: string | undefined },
): Promise<Array<GatewayRow & { id: string; sort_key: string }>> {
  const page = pageSql(gatewaySorts, query, 4, 'gw_eui');
  const { rows } = await db.query<GatewayRow & { id: string; sort_key: string }>(
    `SELECT g.*, g.gw_eui AS id, ${page.sortKey} FROM (${gatewaySelect} WHERE tenant_id = $1) g
      WHERE ($2::boolean IS NULL OR online = $2) AND ($3::uuid IS NULL OR site_id = $3) AND ${page.after}
      ORDER BY ${page.orderBy} NULLS LAST LIMIT ${page.fetch}`,
    [tenantId, query.online ?? null, query.siteId ?? null, ...page.params],
  );
  return rows;
}

export const orphanSorts = {
  lastSeenAt: 'last_seen_at',
  devEui: 'dev_eui',
  firstSeenAt: 'first_seen_at',
} as const;
export type OrphanSort = keyof typeof orphanSorts;

/** One page of the tenant's orphans (v6). */
export async function pageOrphans(
  db: PoolClient,
  tenantId: string,
  query: ListInput<OrphanSort>,
): Promise<Array<OrphanRow & { id: string; sort_key: string }>> {
  const page = pageSql(orphanSorts, query, 2, 'dev_eui');
  const { rows } = await db.query<OrphanRow & { id: string; sort_key: string }>(
    `SELECT dev_eui AS id, dev_eui, application_id, device_name, first_seen_at, last_seen_at,
            uplink_count::text AS uplink_count, last_f_port, last_rssi, last_snr, ${page.sortKey}
       FROM orphan_devices WHERE tenant_id = $1 AND ${page.after}
      ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
    [tenantId, ...page.params],
  );
  return rows;
}
