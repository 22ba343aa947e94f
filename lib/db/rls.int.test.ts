import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createTestTenant } from '../testing/fixtures.js';
import {
  findExposedChunks,
  findProtectionProblems,
  globalTables,
  listTenantTables,
  type TenantTable,
} from '../testing/rls-catalog.js';
import { createRlsProbe, probeCalls, type RlsProbe } from '../testing/rls-probe.js';
import { rowFactories, type Row } from '../testing/tenant-rows.js';
import { withPlatformAdmin } from './platform-admin.js';
import { createPool, type Pool, type PoolClient } from './pool.js';
import { withTenant, withTransaction } from './tenant.js';

/**
 * The RLS suite, generated from the catalog: every table of schema public with a tenant_id column (plus
 * tenants, keyed by id) is listed at collection time, its protection is checked structurally, and then every
 * table × {select, insert, update, delete} × {own tenant, other tenant, no tenant, platform admin} runs as the
 * real parking_api login, each table in its own fresh tenant pair. The expected outcome follows the role's
 * privileges: an operation it has no privilege for must fail with "permission denied"; one it has must be
 * scoped by the policies.
 */
const config = loadConfig();

async function superuserClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await client.connect();
  return client;
}

const catalogClient = await superuserClient();
const tenantTables = await listTenantTables(catalogClient);
await catalogClient.end();

type Op = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';
const ops: Op[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

let su: pg.Client;
let apiPool: Pool;
let probe: RlsProbe;
let platformAdminId: string;

beforeAll(async () => {
  su = await superuserClient();
  apiPool = createPool(config.postgres.apiUrl, 'rls-suite', 4);
  probe = await createRlsProbe(su);
  const { rows } = await su.query<{ id: string }>(
    'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
    [`admin-${randomUUID().slice(0, 8)}@example.test`, 'Platform Admin'],
  );
  platformAdminId = rows[0]!.id;
  await su.query('INSERT INTO platform_admins (user_id) VALUES ($1)', [platformAdminId]);
});

afterAll(async () => {
  await probe?.drop();
  await apiPool?.end();
  await su?.end();
});

async function privileges(role: string, table: string): Promise<Record<Op, boolean>> {
  const { rows } = await su.query<Record<Op, boolean>>(
    `SELECT has_table_privilege($1, $2::regclass, 'SELECT') AS "SELECT",
            has_table_privilege($1, $2::regclass, 'INSERT') AS "INSERT",
            has_table_privilege($1, $2::regclass, 'UPDATE') AS "UPDATE",
            has_table_privilege($1, $2::regclass, 'DELETE') AS "DELETE"`,
    [role, table],
  );
  return rows[0]!;
}

async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the operation to be refused, it succeeded');
}

const permissionDenied = /permission denied/;
const rlsViolation = /row-level security/;

describe('catalog: every table is classified and every tenant table protected', () => {
  it('finds the tenant tables of the issue (sanity check of the generator)', () => {
    const names = tenantTables.map((t) => t.name);
    for (const expected of ['tenants', 'spaces', 'reservations', 'audit_log', 'uplinks', 'device_health_1d'])
      expect(names).toContain(expected);
  });

  it('has no protection problem in schema public (RLS forced, four policies, keys, indexes, triggers)', async () => {
    expect(await findProtectionProblems(su)).toEqual([]);
  });

  it('has a row factory for every tenant table', () => {
    const missing = tenantTables.map((t) => t.name).filter((name) => !(name in rowFactories));
    expect(missing).toEqual([]);
  });

  it('lists only global tables that exist (the allowlist does not rot)', async () => {
    const { rows } = await su.query<{ name: string }>(
      "SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')",
    );
    const existing = new Set(rows.map((r) => r.name));
    expect(Object.keys(globalTables).filter((name) => !existing.has(name))).toEqual([]);
  });

  it('leaves no hypertable chunk readable by a role bound by RLS', async () => {
    expect(await findExposedChunks(su)).toEqual([]);
  });
});

describe('the suite can fail: a scratch tenant table without a policy is detected by the same check', () => {
  it('flags missing RLS, then a missing policy, and passes once app_protect_tenant_table() ran', async () => {
    const schema = `rls_scratch_${randomUUID().slice(0, 8)}`;
    await su.query("SELECT set_config('scratch.schema', $1, false)", [schema]);
    await su.query(`DO $$ BEGIN
      EXECUTE format('CREATE SCHEMA %I', current_setting('scratch.schema'));
      EXECUTE format('CREATE TABLE %I.things (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id))',
        current_setting('scratch.schema'));
    END $$`);
    try {
      const unprotected = await findProtectionProblems(su, schema);
      expect(unprotected).toContain('things: row-level security is not enabled');
      expect(unprotected).toContain('things: policy tenant_isolation is missing');

      await su.query(
        "SELECT app_protect_tenant_table(format('%I.things', current_setting('scratch.schema'))::regclass)",
      );
      expect(await findProtectionProblems(su, schema)).toEqual([]);

      await su.query(`DO $$ BEGIN
        EXECUTE format('DROP POLICY tenant_isolation ON %I.things', current_setting('scratch.schema'));
      END $$`);
      expect(await findProtectionProblems(su, schema)).toEqual([
        'things: policy tenant_isolation is missing',
      ]);

      await su.query(`DO $$ BEGIN
        EXECUTE format('CREATE POLICY tenant_isolation ON %I.things USING (true)', current_setting('scratch.schema'));
      END $$`);
      expect(await findProtectionProblems(su, schema)).toEqual([
        'things: policy tenant_isolation is not FOR ALL TO PUBLIC USING/WITH CHECK (tenant_id = app_current_tenant())',
      ]);
    } finally {
      await su.query(
        "DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', current_setting('scratch.schema')); END $$",
      );
    }
  });
});

describe.each(tenantTables.map((t) => [t.name, t] as [string, TenantTable]))('%s', (name, table) => {
  const key = table.keyColumn;
  let a: string;
  let b: string;
  const counters = new Map<string, number>();
  const build = async (tenantId: string): Promise<Row> => {
    const n = counters.get(tenantId) ?? 0;
    counters.set(tenantId, n + 1);
    return rowFactories[name]!(su, tenantId, n);
  };
  const seeded = new Map<string, Row>();
  const matchOf = (row: Row) => Object.fromEntries(table.primaryKey.map((c) => [c, row[c]]));
  let api: Record<Op, boolean>;
  let admin: Record<Op, boolean>;

  beforeAll(async () => {
    [a, b] = (await Promise.all([createTestTenant(), createTestTenant()])).map((t) => t.tenantId) as [
      string,
      string,
    ];
    api = await privileges('parking_api', name);
    admin = await privileges('parking_platform_admin', name);
    const calls = probeCalls(su, probe);
    for (const tenant of [a, b]) {
      // The tenants table's rows are the tenants themselves.
      const row = name === 'tenants' ? { id: tenant } : await calls.insertRow(name, await build(tenant));
      seeded.set(tenant, row);
    }
  });

  const asTenant = <T>(tenantId: string, work: (db: PoolClient) => Promise<T>) =>
    withTenant(apiPool, tenantId, work, { actor: { type: 'system', id: 'rls-suite' } });
  const asNobody = <T>(work: (db: PoolClient) => Promise<T>) => withTransaction(apiPool, work);
  const asPlatformAdmin = <T>(work: (db: PoolClient) => Promise<T>) =>
    withPlatformAdmin(apiPool, { userId: platformAdminId, reason: 'rls suite' }, work);

  describe('own tenant', () => {
    it('SELECT sees its rows and only its rows', async () => {
      const run = asTenant(a, (db) => probeCalls(db, probe).visibleTenants(name, key));
      if (!api.SELECT) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toEqual([a]);
    });
    it('INSERT of an own row succeeds', async () => {
      const row = await build(a);
      const run = asTenant(a, (db) => probeCalls(db, probe).insertRow(name, row));
      if (!api.INSERT) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect((await run)[key]).toBe(a);
    });
    it('UPDATE reaches its rows', async () => {
      const run = asTenant(a, (db) => probeCalls(db, probe).touchRows(name, key, a));
      if (!api.UPDATE) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toBeGreaterThanOrEqual(1);
    });
    it('DELETE removes an own row', async () => {
      const row =
        name === 'tenants' ? { id: a } : await probeCalls(su, probe).insertRow(name, await build(a));
      const run = asTenant(a, (db) => probeCalls(db, probe).deleteRows(name, matchOf(row)));
      if (!api.DELETE) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toBe(1);
    });
  });

  describe('other tenant', () => {
    it("SELECT never shows the other tenant's rows", async () => {
      const run = asTenant(a, (db) => probeCalls(db, probe).visibleTenants(name, key));
      if (!api.SELECT) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).not.toContain(b);
    });
    it('INSERT of a row for the other tenant is refused by the policy', async () => {
      const row = await build(b);
      const error = await failure(asTenant(a, (db) => probeCalls(db, probe).insertRow(name, row)));
      expect(error.code).toBe('42501');
      expect(error.message).toMatch(api.INSERT ? rlsViolation : permissionDenied);
    });
    it("UPDATE does not reach the other tenant's rows", async () => {
      const run = asTenant(a, (db) => probeCalls(db, probe).touchRows(name, key, b));
      if (!api.UPDATE) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toBe(0);
    });
    it("DELETE does not remove the other tenant's row", async () => {
      const target = matchOf(seeded.get(b)!);
      const run = asTenant(a, (db) => probeCalls(db, probe).deleteRows(name, target));
      if (!api.DELETE) expect((await failure(run)).message).toMatch(permissionDenied);
      else expect(await run).toBe(0);
      expect(await probeCalls(su, probe).countRows(name, target)).toBe(1);
    });
  });

  describe('no tenant set', () => {
    it('SELECT sees nothing', async () => {
      const run = asNobody((db) => probeCalls(db, probe).visibleTenants(name, key));
      if (!api.SELECT) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toEqual([]);
    });
    it('INSERT is refused', async () => {
      const row = await build(a);
      const error = await failure(asNobody((db) => probeCalls(db, probe).insertRow(name, row)));
      expect(error.code).toBe('42501');
      expect(error.message).toMatch(api.INSERT ? rlsViolation : permissionDenied);
    });
    it('UPDATE reaches nothing', async () => {
      const run = asNobody((db) => probeCalls(db, probe).touchRows(name, key, a));
      if (!api.UPDATE) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toBe(0);
    });
    it('DELETE removes nothing', async () => {
      const target = matchOf(seeded.get(a)!);
      const run = asNobody((db) => probeCalls(db, probe).deleteRows(name, target));
      if (!api.DELETE) expect((await failure(run)).message).toMatch(permissionDenied);
      else expect(await run).toBe(0);
      expect(await probeCalls(su, probe).countRows(name, target)).toBe(1);
    });
  });

  describe('platform admin path', () => {
    it('SELECT sees every tenant (or is refused for secrets)', async () => {
      const run = asPlatformAdmin((db) => probeCalls(db, probe).visibleTenants(name, key));
      if (!admin.SELECT) return expect((await failure(run)).message).toMatch(permissionDenied);
      expect(await run).toEqual(expect.arrayContaining([a, b]));
    });
    it.each(['INSERT', 'UPDATE', 'DELETE'] as const)('%s is refused: the path is read-only', async (op) => {
      expect(admin[op]).toBe(false);
      const db = probeCalls;
      const run = asPlatformAdmin(async (client) => {
        const calls = db(client, probe);
        if (op === 'INSERT') return calls.insertRow(name, await build(a));
        if (op === 'UPDATE') return calls.touchRows(name, key, a);
        return calls.deleteRows(name, matchOf(seeded.get(a)!));
      });
      expect((await failure(run)).message).toMatch(permissionDenied);
    });
  });

  it('is covered for every operation', () => {
    expect(ops.every((op) => typeof api[op] === 'boolean')).toBe(true);
  });
});
