import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { randomDevEui } from './fixtures.js';

/**
 * Insertable rows for every tenant table, keyed by table name (the RLS suite fails when a tenant table has no
 * factory here). A factory returns a new row for `tenantId` as JSON (bytea as '\\x…' hex, ranges as text),
 * creating the parent rows it needs through `db`, a superuser client. `n` counts calls per table and tenant,
 * for tables whose keys come from a short list.
 */
export type Row = Record<string, unknown>;
export type RowFactory = (db: pg.Client, tenantId: string, n: number) => Promise<Row>;

const rand = () => randomUUID().slice(0, 8);
const hex = (bytes: number) => `\\x${randomBytes(bytes).toString('hex')}`;
const recent = () => new Date(Date.now() - Math.floor(Math.random() * 3_600_000)).toISOString();
const future = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

async function space(db: pg.Client, tenantId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $3) RETURNING id',
    [tenantId, `P-${rand()}`, 'parent space'],
  );
  return rows[0]!.id;
}

async function member(db: pg.Client, tenantId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
    [`u-${rand()}@example.test`, 'Test User'],
  );
  const userId = rows[0]!.id;
  await db.query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'viewer')", [
    tenantId,
    userId,
  ]);
  return userId;
}

async function display(db: pg.Client, tenantId: string): Promise<string> {
  const devEui = randomDevEui();
  await db.query('INSERT INTO display_devices (tenant_id, dev_eui) VALUES ($1, $2)', [tenantId, devEui]);
  return devEui;
}

const syncResources = ['devices', 'gateways', 'device_profiles', 'applications'];

export const rowFactories: Record<string, RowFactory> = {
  tenants: async (_db, tenantId) => ({ id: tenantId, slug: `t-${rand()}`, name: 'Tenant' }),
  spaces: async (_db, tenantId) => ({ tenant_id: tenantId, code: `S-${rand()}`, name: 'Space' }),
  sites: async (_db, tenantId) => ({
    tenant_id: tenantId,
    name: `Site ${rand()}`,
    timezone: 'Europe/Berlin',
  }),
  sensor_devices: async (_db, tenantId) => ({
    tenant_id: tenantId,
    dev_eui: randomDevEui(),
    codec: 'browan-tbms100',
  }),
  display_devices: async (_db, tenantId) => ({
    tenant_id: tenantId,
    dev_eui: randomDevEui(),
    f_port: 10,
    display_codes: { free: '01', occupied: '02' },
  }),
  api_keys: async (_db, tenantId) => ({
    tenant_id: tenantId,
    name: 'key',
    key_hash: hex(32),
    scopes: ['spaces:read'],
  }),
  memberships: async (db, tenantId) => {
    const { rows } = await db.query<{ id: string }>(
      'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
      [`m-${rand()}@example.test`, 'Member'],
    );
    return { tenant_id: tenantId, user_id: rows[0]!.id, role: 'operator' };
  },
  refresh_tokens: async (db, tenantId) => ({
    tenant_id: tenantId,
    user_id: await member(db, tenantId),
    token_hash: hex(32),
    family_id: randomUUID(),
    expires_at: future(24),
  }),
  webhook_secrets: async (_db, tenantId) => ({ tenant_id: tenantId, secret: hex(32), status: 'revoked' }),
  member_invites: async (_db, tenantId) => ({
    tenant_id: tenantId,
    email: `invitee-${rand()}@example.test`,
    role: 'viewer',
    token_hash: hex(32),
    expires_at: future(72),
  }),
  gateways: async (_db, tenantId) => ({ tenant_id: tenantId, gw_eui: randomDevEui(), name: 'Gateway' }),
  chirpstack_applications: async (_db, tenantId) => ({
    tenant_id: tenantId,
    application_id: randomUUID(),
    name: 'Application',
  }),
  chirpstack_sync_state: async (_db, tenantId, n) => ({
    tenant_id: tenantId,
    resource: syncResources[n % syncResources.length],
  }),
  chirpstack_sync_items: async (_db, tenantId) => ({
    tenant_id: tenantId,
    kind: 'gateway',
    eui: randomDevEui(),
    last_error: 'UNAVAILABLE: connection refused',
  }),
  orphan_devices: async (_db, tenantId) => ({ tenant_id: tenantId, dev_eui: randomDevEui() }),
  reservations: async (db, tenantId) => ({
    tenant_id: tenantId,
    space_id: await space(db, tenantId),
    during: `[${future(1)},${future(2)})`,
    request_id: randomUUID(),
  }),
  display_policies: async (_db, tenantId) => ({
    tenant_id: tenantId,
    name: `Policy ${rand()}`,
    display_codes: { free: '01' },
  }),
  display_overrides: async (db, tenantId) => ({
    tenant_id: tenantId,
    space_id: await space(db, tenantId),
    display_state: 'reserved',
    expires_at: future(1),
  }),
  downlink_jobs: async (db, tenantId) => ({
    tenant_id: tenantId,
    dev_eui: await display(db, tenantId),
    f_port: 10,
    payload: '\\x01',
    reason: 'manual',
    dedupe_key: randomUUID(),
  }),
  display_states: async (db, tenantId) => ({
    tenant_id: tenantId,
    dev_eui: await display(db, tenantId),
    state: { commandSeq: 0 },
  }),
  analyst_logins: async (_db, tenantId) => ({ tenant_id: tenantId, role_name: `not_a_role_${rand()}` }),
  audit_log: async (_db, tenantId) => ({
    tenant_id: tenantId,
    actor_type: 'system',
    actor_id: 'rls-suite',
    action: 'create',
    entity: 'test',
  }),
  uplinks: async (_db, tenantId) => ({
    tenant_id: tenantId,
    time: recent(),
    event_id: randomUUID(),
    dev_eui: randomDevEui(),
    f_cnt: 1,
    f_port: 102,
    payload: '\\x00',
    received_at: recent(),
  }),
  outbox: async (_db, tenantId) => ({
    tenant_id: tenantId,
    time: recent(),
    id: randomUUID(),
    topic: 'parking.occupancy-changes.v1',
    key: randomUUID(),
    value: '\\x00',
  }),
  occupancy_policies: async (_db, tenantId) => ({
    tenant_id: tenantId,
    name: `Policy ${rand()}`,
    confirm_count: 3,
  }),
  occupancy_changes: async (_db, tenantId) => ({
    tenant_id: tenantId,
    time: recent(),
    event_id: randomUUID(),
    space_id: randomUUID(),
    dev_eui: randomDevEui(),
    state: 'occupied',
  }),
  device_status: async (_db, tenantId) => {
    const time = recent();
    return { tenant_id: tenantId, time, dev_eui: randomDevEui(), battery_volts: 3.6, last_seen_at: time };
  },
  gateway_status: async (_db, tenantId) => ({
    tenant_id: tenantId,
    time: recent(),
    gw_eui: randomDevEui(),
    online: true,
  }),
  downlink_outcomes: async (_db, tenantId) => ({
    tenant_id: tenantId,
    time: recent(),
    job_id: randomUUID(),
    dev_eui: randomDevEui(),
    outcome: 'ack',
  }),
  space_occupancy_5m: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    space_id: randomUUID(),
    occupied_seconds: 60,
    occupancy_rate: 0.2,
  }),
  space_occupancy_1h: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    space_id: randomUUID(),
    occupied_seconds: 600,
    occupancy_rate: 0.17,
  }),
  site_occupancy_1h: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    site_id: randomUUID(),
    spaces: 10,
    occupancy_rate: 0.5,
  }),
  device_health_1d: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    dev_eui: randomDevEui(),
    uplinks: 24,
  }),
  rollup_states: async (db, tenantId) => {
    const { rows } = await db.query<{ id: string }>(
      'INSERT INTO sites (tenant_id, name) VALUES ($1, $2) RETURNING id',
      [tenantId, `Site ${rand()}`],
    );
    return { tenant_id: tenantId, site_id: rows[0]!.id, state: { watermark: null } };
  },
  site_occupancy_5m: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    site_id: randomUUID(),
    spaces: 4,
    occupancy_rate: 0.5,
  }),
  device_health_5m: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    dev_eui: randomDevEui(),
    uplinks: 1,
    last_seen_at: recent(),
  }),
  device_health_1h: async (_db, tenantId) => ({
    tenant_id: tenantId,
    bucket: recent(),
    dev_eui: randomDevEui(),
    uplinks: 4,
    last_seen_at: recent(),
  }),
  liveness_states: async (_db, tenantId) => ({
    tenant_id: tenantId,
    kind: 'device',
    entity_id: randomDevEui(),
    state: { lastHeard: null },
    silent_after_ms: 90_000,
    clear_after_heard: 2,
  }),
  liveness_alerts: async (_db, tenantId) => ({
    tenant_id: tenantId,
    alert_id: randomUUID(),
    kind: 'gateway',
    entity_id: randomDevEui(),
    raised_at: recent(),
    last_heard_at: recent(),
  }),
};
