import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../lib/api-key.js';
import { loadConfig } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db/pool.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { createLogger } from '../lib/logger.js';
import { createTestTenant, type TestTenant } from '../lib/testing/fixtures.js';
import { apiBase, createApp } from './app.js';
import { createTokenService } from './auth/tokens.js';

/**
 * GET /devices/{devEui} through HTTP against the real database: the device's latest device_status row (written
 * by processors/device-status) as `lastStatus`, null before any, and never a row of another tenant.
 */
const config = loadConfig();
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const H = 3_600_000;

let su: pg.Client;
let pool: Pool;
let server: Server;
let base: string;
let a: TestTenant;
let b: TestTenant;
let keyA: string;

async function getDevice(devEui: string, key: string) {
  const response = await fetch(`${base}${apiBase}/devices/${devEui}`, { headers: { 'x-api-key': key } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function insertStatus(
  tenantId: string,
  devEui: string,
  time: number,
  row: { battery: number | null; margin: number; external: boolean },
): Promise<void> {
  await su.query(
    `INSERT INTO device_status (tenant_id, time, dev_eui, battery_percent, margin, external_power, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $2)`,
    [tenantId, new Date(time), devEui, row.battery, row.margin, row.external],
  );
}

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  pool = createPool(config.postgres.apiUrl, 'device-status-api-test', 2);
  [a, b] = await Promise.all([createTestTenant(), createTestTenant()]);
  keyA = `pk_test_${randomUUID().replace(/-/g, '')}`;
  await su.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
    a.tenantId,
    'devices',
    hashApiKey(keyA),
    ['devices:read'],
  ]);
  const app = createApp({
    apiPool: pool,
    logger: createLogger('device-status-api-test', 'silent'),
    tokens: createTokenService({ jwtSecret: config.apiAuth.jwtSecret, accessTokenTtlS: 300 }),
    refreshTokenTtlS: 3_600,
    limits: { windowS: 60, perIp: 100_000, perUser: 100_000, perApiKey: 100_000 },
  });
  const listening = await listen(app, '127.0.0.1', 0);
  server = listening.server;
  base = `http://127.0.0.1:${listening.port}`;
});

afterAll(async () => {
  if (server) await closeServer(server);
  await pool?.end();
  await su?.end();
});

describe('GET /devices/{devEui} lastStatus', () => {
  it('is null before the device answered a status request', async () => {
    const r = await getDevice(a.devEui, keyA);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ devEui: a.devEui, lastStatus: null });
  });

  it("is the device's latest status row of its own tenant only", async () => {
    await insertStatus(a.tenantId, a.devEui, T0, { battery: 91.5, margin: 12, external: false });
    await insertStatus(a.tenantId, a.devEui, T0 + H, { battery: 87, margin: 4, external: false });
    // Another tenant's row for the same DevEUI, later: never shown to tenant A.
    await insertStatus(b.tenantId, a.devEui, T0 + 2 * H, { battery: null, margin: -2, external: true });
    const r = await getDevice(a.devEui.toLowerCase(), keyA);
    expect(r.status).toBe(200);
    expect(r.body['lastStatus']).toEqual({
      at: new Date(T0 + H).toISOString(),
      batteryPercent: 87,
      marginDb: 4,
      externalPower: false,
    });
    // Tenant B's device is not tenant A's to read.
    expect((await getDevice(b.devEui, keyA)).status).toBe(404);
  });
});
