import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { hashApiKey } from '../api-key.js';
import { loadConfig } from '../config.js';

/**
 * Test data made through the migration identity (which may write for any tenant), one fresh tenant per test so
 * tests never see each other's rows.
 */
export interface TestTenant {
  tenantId: string;
  slug: string;
  spaceId: string;
  spaceCode: string;
  devEui: string;
  apiKey: string;
}

export function randomDevEui(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

export async function createTestTenant(migrateUrl = loadConfig().postgres.migrateUrl): Promise<TestTenant> {
  const client = new pg.Client({ connectionString: migrateUrl });
  await client.connect();
  try {
    const slug = `t-${randomUUID().slice(0, 8)}`;
    const devEui = randomDevEui();
    const apiKey = `pk_test_${randomBytes(18).toString('base64url')}`;
    await client.query('BEGIN');
    const tenant = await client.query<{ id: string }>(
      'INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id',
      [slug, `Test ${slug}`],
    );
    const tenantId = tenant.rows[0]!.id;
    const space = await client.query<{ id: string }>(
      'INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $3) RETURNING id',
      [tenantId, 'A-01', 'Space A-01'],
    );
    const spaceId = space.rows[0]!.id;
    await client.query(
      'INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, $4)',
      [tenantId, devEui, spaceId, 'browan-tbms100'],
    );
    await client.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
      tenantId,
      'test key',
      hashApiKey(apiKey),
      ['spaces:read'],
    ]);
    await client.query('COMMIT');
    return { tenantId, slug, spaceId, spaceCode: 'A-01', devEui, apiKey };
  } finally {
    await client.end();
  }
}

/** Polls `probe` until it returns a value that passes `done`, or fails with the last value seen. */
export async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 20_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
}
