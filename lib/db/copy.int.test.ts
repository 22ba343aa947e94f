import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createTestTenant, type TestTenant } from '../testing/fixtures.js';
import { withTenant } from './tenant.js';
import { createPool, type Pool } from './pool.js';

/**
 * COPY is the pipeline's fast path into hypertables (see shared notes: ~180k rows/s). PostgreSQL refuses
 * COPY FROM to roles subject to RLS, so the pipeline role (BYPASSRLS) must be able to, the API role must not,
 * and chunks created by a COPY must stay unreadable to the API role.
 */
const config = loadConfig();
let tenant: TestTenant;
let apiPool: Pool;

function uplinkCsv(tenantId: string, devEui: string, rows: number, day: string): string {
  return Array.from(
    { length: rows },
    (_, i) =>
      `${tenantId},${day}T00:00:${String(i % 60).padStart(2, '0')}Z,${randomUUID()},${devEui},${i},102,\\x01,${day}T00:00:01Z\n`,
  ).join('');
}

async function copyUplinks(connectionString: string, csv: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const sink = client.query(
      copyFrom(
        'COPY uplinks (tenant_id, time, event_id, dev_eui, f_cnt, f_port, payload, received_at) FROM STDIN WITH (FORMAT csv)',
      ),
    );
    await pipeline(Readable.from([csv]), sink);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  tenant = await createTestTenant();
  apiPool = createPool(config.postgres.apiUrl, 'copy-test', 1);
});

afterAll(async () => {
  await apiPool.end();
});

describe('COPY into hypertables', () => {
  it('the pipeline role can COPY, and the rows are visible to their tenant only through the hypertable', async () => {
    // A far-future day puts the rows in a chunk this COPY creates.
    const day = `2091-0${1 + Math.floor(Math.random() * 9)}-1${Math.floor(Math.random() * 9)}`;
    await copyUplinks(config.postgres.pipelineUrl, uplinkCsv(tenant.tenantId, tenant.devEui, 50, day));
    const count = await withTenant(apiPool, tenant.tenantId, async (db) => {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM uplinks WHERE time >= $1::date',
        [day],
      );
      return Number(rows[0]!.n);
    });
    expect(count).toBe(50);

    const owner = new pg.Client({ connectionString: config.postgres.migrateUrl });
    await owner.connect();
    const { rows } = await owner.query<{ chunk: string }>(
      `SELECT format('%I.%I', c.chunk_schema, c.chunk_name) AS chunk FROM timescaledb_information.chunks c
        WHERE c.hypertable_name = 'uplinks' AND c.range_start <= $1::timestamptz AND c.range_end > $1::timestamptz`,
      [`${day}T00:00:00Z`],
    );
    await owner.end();
    const chunk = rows[0]?.chunk;
    expect(chunk).toMatch(/_hyper_/);
    const api = new pg.Client({ connectionString: config.postgres.apiUrl });
    await api.connect();
    try {
      await expect(api.query(`SELECT count(*) FROM ${chunk}`)).rejects.toThrow(/permission denied/);
    } finally {
      await api.end();
    }
  });

  it('the RLS-bound API role cannot COPY', async () => {
    await expect(
      copyUplinks(config.postgres.apiUrl, uplinkCsv(tenant.tenantId, tenant.devEui, 1, '2091-12-01')),
    ).rejects.toThrow(/permission denied|row-level security/);
  });
});
