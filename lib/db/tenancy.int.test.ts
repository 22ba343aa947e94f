import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { isPlatformError } from '../errors.js';
import { createTestTenant, randomDevEui, type TestTenant } from '../testing/fixtures.js';
import { listTenantTables } from '../testing/rls-catalog.js';
import { createRlsProbe, probeCalls, type RlsProbe } from '../testing/rls-probe.js';
import { connectAnalyst, type AnalystConnection } from '../testing/analyst.js';
import { createAnalystLogin } from './analyst-logins.js';
import { withPlatformAdmin } from './platform-admin.js';
import { createPool, type Pool } from './pool.js';
import { withTenant, withTransaction } from './tenant.js';

/**
 * Tenancy beyond the per-table matrix (lib/db/rls.int.test.ts): direct chunk access, analyst logins that try
 * to switch tenants, pooled connections, global users and the platform-admin path's guard.
 */
const config = loadConfig();
let su: pg.Client;
let apiPool: Pool;
let pipelinePool: Pool;
let probe: RlsProbe;
let a: TestTenant;
let b: TestTenant;

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  apiPool = createPool(config.postgres.apiUrl, 'tenancy-test', 2);
  pipelinePool = createPool(config.postgres.pipelineUrl, 'tenancy-test-pipeline', 2);
  probe = await createRlsProbe(su);
  [a, b] = await Promise.all([createTestTenant(), createTestTenant()]);
});

afterAll(async () => {
  await probe?.drop();
  await apiPool?.end();
  await pipelinePool?.end();
  await su?.end();
});

describe('hypertable chunks', () => {
  it('a chunk created after the migration is not readable by parking_api, while the hypertable still works', async () => {
    // A day in 1990 no one else uses: the insert creates a fresh chunk.
    const day = new Date(Date.UTC(1990, 0, 1) + Math.floor(Math.random() * 360) * 86_400_000);
    const eventId = randomUUID();
    const insert = (id: string, at: Date) =>
      pipelinePool.query(
        `INSERT INTO uplinks (tenant_id, time, event_id, dev_eui, f_cnt, f_port, payload, received_at)
         VALUES ($1, $2, $3, $4, 1, 102, '\\x00', now())`,
        [a.tenantId, at, id, a.devEui],
      );
    await insert(eventId, new Date(day.getTime() + 3_600_000));
    try {
      const { rows } = await su.query<{ chunk: string }>(
        `SELECT c::text AS chunk FROM show_chunks('uplinks', newer_than => $1::timestamptz, older_than => $2::timestamptz) AS c`,
        [day, new Date(day.getTime() + 86_400_000)],
      );
      expect(rows).toHaveLength(1);
      const chunk = rows[0]!.chunk;
      expect(chunk).toMatch(/^_timescaledb_internal\._hyper_/);

      const direct = await withTenant(apiPool, a.tenantId, (db) =>
        probeCalls(db, probe).countRows(chunk, {}),
      ).catch((error: Error) => error);
      expect(direct).toBeInstanceOf(Error);
      expect((direct as Error).message).toMatch(/permission denied for table _hyper_/);

      // Reads through the hypertable stay scoped, writes through it (into the same chunk) still work.
      await insert(randomUUID(), new Date(day.getTime() + 7_200_000));
      const own = await withTenant(apiPool, a.tenantId, async (db) => {
        const result = await db.query('SELECT event_id FROM uplinks WHERE time >= $1 AND time < $2', [
          day,
          new Date(day.getTime() + 86_400_000),
        ]);
        return result.rows.length;
      });
      expect(own).toBe(2);
      const other = await withTenant(apiPool, b.tenantId, async (db) => {
        const result = await db.query('SELECT event_id FROM uplinks WHERE event_id = $1', [eventId]);
        return result.rows.length;
      });
      expect(other).toBe(0);
    } finally {
      await su.query(
        "SELECT drop_chunks('uplinks', newer_than => $1::timestamptz, older_than => $2::timestamptz)",
        [day, new Date(day.getTime() + 86_400_000)],
      );
    }
  });
});

describe('analyst logins (Grafana)', () => {
  let connection: AnalystConnection;
  let analyst: pg.Client;
  let roleName: string;

  beforeAll(async () => {
    connection = await connectAnalyst(su, config.postgres.migrateUrl, a.tenantId, 't');
    ({ client: analyst, roleName } = connection);
  });

  afterAll(async () => {
    await connection?.close();
  });

  const visibleSpaceTenants = async () =>
    (await analyst.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM spaces')).rows.map(
      (r) => r.tenant_id,
    );

  it("sees its own tenant's rows and no other", async () => {
    expect(await visibleSpaceTenants()).toEqual([a.tenantId]);
  });

  it('cannot switch tenants with SET app.tenant_id or set_config', async () => {
    await analyst.query("SELECT set_config('app.tenant_id', $1, false)", [b.tenantId]);
    expect(await visibleSpaceTenants()).toEqual([a.tenantId]);
    await analyst.query("SELECT set_config('app.tenant_id', '', false)");
  });

  it('cannot SET ROLE to the API or platform-admin role; SET ROLE parking_analyst changes nothing', async () => {
    await expect(analyst.query('SET ROLE parking_api')).rejects.toThrow(/permission denied to set role/);
    await expect(analyst.query('SET ROLE parking_platform_admin')).rejects.toThrow(
      /permission denied to set role/,
    );
    await analyst.query('SET ROLE parking_analyst');
    await analyst.query("SELECT set_config('app.tenant_id', $1, false)", [b.tenantId]);
    expect(await visibleSpaceTenants()).toEqual([a.tenantId]);
    await analyst.query('RESET ROLE');
    await analyst.query("SELECT set_config('app.tenant_id', '', false)");
  });

  it('sees only its tenant in every tenant table it may read, even with app.tenant_id set to another', async () => {
    const tables = await listTenantTables(su);
    await analyst.query("SELECT set_config('app.tenant_id', $1, false)", [b.tenantId]);
    const calls = probeCalls(analyst, probe);
    for (const table of tables) {
      const { rows } = await su.query<{ ok: boolean }>(
        "SELECT has_table_privilege($1, $2::regclass, 'SELECT') AS ok",
        [roleName, table.name],
      );
      if (!rows[0]!.ok) continue;
      const visible = await calls.visibleTenants(table.name, table.keyColumn);
      expect(
        visible.filter((t) => t !== a.tenantId),
        table.name,
      ).toEqual([]);
    }
  });

  it('cannot write', async () => {
    await expect(
      analyst.query("INSERT INTO spaces (tenant_id, code, name) VALUES ($1, 'X-1', 'x')", [a.tenantId]),
    ).rejects.toThrow(/read-only transaction|permission denied/);
  });

  it('rejects a slug that is not a plain identifier', async () => {
    await expect(
      createAnalystLogin(su, a.tenantId, 'x"; DROP ROLE parking_api; --', 'long-enough-password'),
    ).rejects.toThrow(/slug must match/);
  });
});

describe('pooled connections', () => {
  it("never carry one unit of work's tenant, actor or role into the next on the same connection", async () => {
    const pool = createPool(config.postgres.apiUrl, 'tenancy-pool-reuse', 1);
    const settings =
      "SELECT pg_backend_pid() AS pid, current_user AS role, current_setting('app.tenant_id', true) AS tenant, current_setting('app.actor_id', true) AS actor";
    type Settings = { pid: number; role: string; tenant: string | null; actor: string | null };
    try {
      const inside = await withTenant(
        pool,
        a.tenantId,
        async (db) => (await db.query<Settings>(settings)).rows[0]!,
        {
          actor: { type: 'user', id: 'user-a' },
          requestId: 'req-a',
        },
      );
      expect(inside).toMatchObject({ tenant: a.tenantId, actor: 'user-a' });

      const after = (await pool.query<Settings>(settings)).rows[0]!;
      expect(after.pid).toBe(inside.pid);
      expect(after.tenant ?? '').toBe('');
      expect(after.actor ?? '').toBe('');
      expect((await pool.query('SELECT id FROM spaces')).rows).toEqual([]);

      const next = await withTenant(pool, b.tenantId, async (db) => {
        return (await db.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM spaces')).rows;
      });
      expect(next).toEqual([{ tenant_id: b.tenantId }]);

      await expect(
        withTenant(pool, a.tenantId, async () => {
          throw new Error('work failed');
        }),
      ).rejects.toThrow('work failed');
      expect((await pool.query<Settings>(settings)).rows[0]!.tenant ?? '').toBe('');

      const { rows } = await su.query<{ id: string }>(
        'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
        [`pa-${randomUUID().slice(0, 8)}@example.test`, 'PA'],
      );
      await su.query('INSERT INTO platform_admins (user_id) VALUES ($1)', [rows[0]!.id]);
      await withPlatformAdmin(
        pool,
        { userId: rows[0]!.id, reason: 'pool reuse test' },
        async () => undefined,
      );
      const back = (await pool.query<Settings>(settings)).rows[0]!;
      expect(back).toMatchObject({ pid: inside.pid, role: 'parking_api' });
    } finally {
      await pool.end();
    }
  });
});

describe('withTenant settings', () => {
  it('arrive exactly as given, quotes and backslashes included (one BEGIN + set_config message)', async () => {
    const actorId = `o'brien\\'); SELECT set_config('app.tenant_id', '${b.tenantId}', true); --`;
    const requestId = "E'\\x27'; ROLLBACK; --";
    const seen = await withTenant(
      apiPool,
      a.tenantId,
      async (db) =>
        (
          await db.query<{ tenant: string; type: string; actor: string; request: string; block: boolean }>(
            `SELECT current_setting('app.tenant_id') AS tenant, current_setting('app.actor_type') AS type,
                    current_setting('app.actor_id') AS actor, current_setting('app.request_id') AS request,
                    now() = statement_timestamp() AS block`,
          )
        ).rows[0]!,
      { actor: { type: 'webhook', id: actorId }, requestId },
    );
    // block false: now() is the transaction's start, so the query ran inside the block BEGIN opened.
    expect(seen).toEqual({
      tenant: a.tenantId,
      type: 'webhook',
      actor: actorId,
      request: requestId,
      block: false,
    });
  });
});

describe('global users and the platform-admin path', () => {
  let userA: string;
  let userB: string;
  let admin: string;

  beforeAll(async () => {
    const user = async (tenantId: string) => {
      const email = `u-${randomUUID().slice(0, 8)}@example.test`;
      const { rows } = await su.query<{ id: string }>(
        "INSERT INTO users (email, name, password_hash) VALUES ($1, 'U', 'hash') RETURNING id",
        [email],
      );
      await su.query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'admin')", [
        tenantId,
        rows[0]!.id,
      ]);
      return rows[0]!.id;
    };
    [userA, userB] = [await user(a.tenantId), await user(b.tenantId)];
    const { rows } = await su.query<{ id: string }>(
      'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
      [`admin-${randomUUID().slice(0, 8)}@example.test`, 'Admin'],
    );
    admin = rows[0]!.id;
    await su.query('INSERT INTO platform_admins (user_id) VALUES ($1)', [admin]);
  });

  const userIds = (db: { query: pg.Pool['query'] }) =>
    db.query<{ id: string }>('SELECT id FROM users').then((r) => r.rows.map((u) => u.id));

  it('a user is visible only through a membership in the current tenant', async () => {
    const seenByA = await withTenant(apiPool, a.tenantId, (db) => userIds(db));
    expect(seenByA).toContain(userA);
    expect(seenByA).not.toContain(userB);
    expect(await withTransaction(apiPool, (db) => userIds(db))).toEqual([]);
  });

  it('login lookups work before a tenant is known, through SECURITY DEFINER functions only', async () => {
    const { rows: users } = await su.query<{ email: string }>('SELECT email FROM users WHERE id = $1', [
      userA,
    ]);
    const found = await apiPool.query('SELECT user_id, is_active FROM find_login_user($1)', [
      users[0]!.email.toUpperCase(),
    ]);
    expect(found.rows).toEqual([{ user_id: userA, is_active: true }]);
    const tenants = await apiPool.query('SELECT tenant_id, role FROM user_memberships($1)', [userA]);
    expect(tenants.rows).toEqual([{ tenant_id: a.tenantId, role: 'admin' }]);
  });

  it('the platform-admin path reads across tenants and leaves an access row', async () => {
    const requestId = randomUUID();
    const seen = await withPlatformAdmin(
      apiPool,
      { userId: admin, reason: 'support ticket 42', requestId },
      (db) => userIds(db),
    );
    expect(seen).toEqual(expect.arrayContaining([userA, userB]));
    const log = await su.query(
      'SELECT user_id, reason FROM platform_admin_access_log WHERE request_id = $1',
      [requestId],
    );
    expect(log.rows).toEqual([{ user_id: admin, reason: 'support ticket 42' }]);
  });

  it('is refused to a user who is not a platform admin', async () => {
    const error = await withPlatformAdmin(apiPool, { userId: userA, reason: 'curious' }, async () => 1).catch(
      (e: unknown) => e,
    );
    expect(isPlatformError(error, 'FORBIDDEN')).toBe(true);
  });

  it('SET ROLE parking_platform_admin without the audited begin shows nothing', async () => {
    const seen = await withTransaction(apiPool, async (db) => {
      await db.query('SET LOCAL ROLE parking_platform_admin');
      return {
        users: await userIds(db),
        spaces: (await db.query('SELECT id FROM spaces')).rows.length,
      };
    });
    expect(seen).toEqual({ users: [], spaces: 0 });
  });

  it('the platform-admin role cannot read secrets or write', async () => {
    await expect(
      withPlatformAdmin(apiPool, { userId: admin, reason: 'secrets?' }, (db) =>
        db.query('SELECT * FROM webhook_secrets'),
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(
      withPlatformAdmin(apiPool, { userId: admin, reason: 'write?' }, (db) =>
        db.query("INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'x')", [
          a.tenantId,
          randomDevEui(),
        ]),
      ),
    ).rejects.toThrow(/permission denied/);
  });
});
