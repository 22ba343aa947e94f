import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createTestTenant, type TestTenant } from '../testing/fixtures.js';
import { createPool, type Pool, type PoolClient } from './pool.js';
import { withTenant, withTransaction, type TenantContext } from './tenant.js';

/**
 * The audit log: every create/update/delete through the data layer leaves exactly one row carrying the actor and
 * request id of withTenant's context, and the log is append-only for everyone but its owner.
 */
const config = loadConfig();
let su: pg.Client;
let apiPool: Pool;
let pipelinePool: Pool;
let tenant: TestTenant;

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  apiPool = createPool(config.postgres.apiUrl, 'audit-test', 2);
  pipelinePool = createPool(config.postgres.pipelineUrl, 'audit-test-pipeline', 2);
  tenant = await createTestTenant();
});

afterAll(async () => {
  await apiPool?.end();
  await pipelinePool?.end();
  await su?.end();
});

interface AuditRow {
  tenant_id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  entity: string;
  entity_id: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

async function auditRows(requestId: string): Promise<AuditRow[]> {
  const { rows } = await su.query<AuditRow>(
    `SELECT tenant_id, actor_type, actor_id, action, entity, entity_id, before, after
       FROM audit_log WHERE request_id = $1 ORDER BY id`,
    [requestId],
  );
  return rows;
}

function as(work: (db: PoolClient) => Promise<unknown>) {
  const context: TenantContext = { actor: { type: 'user', id: randomUUID() }, requestId: randomUUID() };
  return withTenant(apiPool, tenant.tenantId, work, context).then(() => context);
}

/** Table-driven: each case creates, updates and deletes one row of one table through the API role. */
const cases: Array<{
  entity: string;
  create: (db: PoolClient) => Promise<string>;
  update: (db: PoolClient, id: string) => Promise<unknown>;
  remove: (db: PoolClient, id: string) => Promise<unknown>;
}> = [
  {
    entity: 'sites',
    create: async (db) =>
      (
        await db.query<{ id: string }>('INSERT INTO sites (tenant_id, name) VALUES ($1, $2) RETURNING id', [
          tenant.tenantId,
          `Site ${randomUUID()}`,
        ])
      ).rows[0]!.id,
    update: (db, id) => db.query("UPDATE sites SET timezone = 'Europe/Paris' WHERE id = $1", [id]),
    remove: (db, id) => db.query('DELETE FROM sites WHERE id = $1', [id]),
  },
  {
    entity: 'spaces',
    create: async (db) =>
      (
        await db.query<{ id: string }>(
          'INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $3) RETURNING id',
          [tenant.tenantId, `B-${randomUUID().slice(0, 6)}`, 'Space'],
        )
      ).rows[0]!.id,
    update: (db, id) => db.query("UPDATE spaces SET state = 'maintenance', floor = '2' WHERE id = $1", [id]),
    remove: (db, id) => db.query('DELETE FROM spaces WHERE id = $1', [id]),
  },
  {
    entity: 'reservations',
    create: async (db) =>
      (
        await db.query<{ id: string }>(
          `INSERT INTO reservations (tenant_id, space_id, during, request_id)
         VALUES ($1, $2, tstzrange(now() + interval '1 day', now() + interval '1 day 2 hours'), $3) RETURNING id`,
          [tenant.tenantId, tenant.spaceId, randomUUID()],
        )
      ).rows[0]!.id,
    update: (db, id) => db.query("UPDATE reservations SET status = 'confirmed' WHERE id = $1", [id]),
    remove: (db, id) => db.query('DELETE FROM reservations WHERE id = $1', [id]),
  },
  {
    entity: 'display_policies',
    create: async (db) =>
      (
        await db.query<{ id: string }>(
          `INSERT INTO display_policies (tenant_id, name, display_codes) VALUES ($1, $2, '{"free": "01"}') RETURNING id`,
          [tenant.tenantId, `Policy ${randomUUID()}`],
        )
      ).rows[0]!.id,
    update: (db, id) =>
      db.query('UPDATE display_policies SET is_active = true, activated_at = now() WHERE id = $1', [id]),
    remove: (db, id) => db.query('DELETE FROM display_policies WHERE id = $1', [id]),
  },
];

describe.each(cases)('$entity', ({ entity, create, update, remove }) => {
  it('create, update and delete each leave exactly one audit row with actor, request id, before and after', async () => {
    let id = '';
    const created = await as(async (db) => {
      id = await create(db);
    });
    const updated = await as((db) => update(db, id));
    const deleted = await as((db) => remove(db, id));

    const [c, u, d] = [
      await auditRows(created.requestId!),
      await auditRows(updated.requestId!),
      await auditRows(deleted.requestId!),
    ];
    expect(c).toHaveLength(1);
    expect(u).toHaveLength(1);
    expect(d).toHaveLength(1);
    expect(c[0]).toMatchObject({
      tenant_id: tenant.tenantId,
      actor_type: 'user',
      actor_id: created.actor!.id,
      action: 'create',
      entity,
      entity_id: id,
      before: null,
    });
    expect(c[0]!.after).toMatchObject({ id, tenant_id: tenant.tenantId });
    expect(u[0]).toMatchObject({ action: 'update', entity, entity_id: id, actor_id: updated.actor!.id });
    expect(u[0]!.before).not.toEqual(u[0]!.after);
    expect(d[0]).toMatchObject({ action: 'delete', entity, entity_id: id, after: null });
    expect(d[0]!.before).toEqual(u[0]!.after);
  });
});

describe('what is not audited, and what is redacted', () => {
  it('an UPDATE that changes nothing leaves no row', async () => {
    const context = await as((db) =>
      db.query('UPDATE spaces SET name = name WHERE id = $1', [tenant.spaceId]),
    );
    expect(await auditRows(context.requestId!)).toEqual([]);
  });

  it("the pipeline's telemetry update of a space (no actor) is not audited; a person's change of state is", async () => {
    const before = await su.query<{ n: string }>('SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1', [
      tenant.tenantId,
    ]);
    await withTransaction(pipelinePool, (db) =>
      db.query(
        "UPDATE spaces SET state = 'occupied', last_event_time = now(), updated_at = now() WHERE id = $1",
        [tenant.spaceId],
      ),
    );
    const after = await su.query<{ n: string }>('SELECT count(*) AS n FROM audit_log WHERE tenant_id = $1', [
      tenant.tenantId,
    ]);
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
    const context = await as((db) =>
      db.query("UPDATE spaces SET state = 'maintenance' WHERE id = $1", [tenant.spaceId]),
    );
    expect(await auditRows(context.requestId!)).toHaveLength(1);
  });

  it('without an actor, a mutation is recorded as the system and the database role', async () => {
    const requestId = randomUUID();
    await withTenant(
      apiPool,
      tenant.tenantId,
      (db) =>
        db.query('INSERT INTO sites (tenant_id, name) VALUES ($1, $2)', [tenant.tenantId, `S ${requestId}`]),
      { requestId },
    );
    expect(await auditRows(requestId)).toMatchObject([
      { actor_type: 'system', actor_id: 'parking_api', action: 'create' },
    ]);
  });

  it('secret columns (hashes, secrets) are redacted', async () => {
    const context = await as((db) =>
      db.query("INSERT INTO api_keys (tenant_id, name, key_hash) VALUES ($1, 'k', $2)", [
        tenant.tenantId,
        Buffer.from(randomUUID()),
      ]),
    );
    const [row] = await auditRows(context.requestId!);
    expect(row!.after).toMatchObject({ key_hash: '[redacted]', name: 'k' });
  });

  it('is queryable per tenant through the API role', async () => {
    const other = await createTestTenant();
    const tenants = await withTenant(apiPool, tenant.tenantId, async (db) =>
      (await db.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM audit_log')).rows.map(
        (r) => r.tenant_id,
      ),
    );
    expect(tenants).toEqual([tenant.tenantId]);
    expect(tenants).not.toContain(other.tenantId);
  });
});

describe('append-only', () => {
  const attempts = [
    ['UPDATE', "UPDATE audit_log SET actor_id = 'forged' WHERE tenant_id = $1"],
    ['DELETE', 'DELETE FROM audit_log WHERE tenant_id = $1'],
  ] as const;

  it.each(attempts)('%s is refused for the API role', async (_, sql) => {
    await expect(
      withTenant(apiPool, tenant.tenantId, (db) => db.query(sql, [tenant.tenantId])),
    ).rejects.toThrow(/permission denied/);
  });

  it.each(attempts)('%s is refused for the pipeline role', async (_, sql) => {
    await expect(pipelinePool.query(sql, [tenant.tenantId])).rejects.toThrow(/permission denied/);
  });

  it.each(attempts)('%s is refused even for a superuser that is not the owner', async (_, sql) => {
    await expect(su.query(sql, [tenant.tenantId])).rejects.toThrow(/append-only/);
  });

  it('TRUNCATE is refused for the API and pipeline roles and for a non-owner superuser', async () => {
    await expect(withTransaction(apiPool, (db) => db.query('TRUNCATE audit_log'))).rejects.toThrow(
      /permission denied/,
    );
    await expect(pipelinePool.query('TRUNCATE audit_log')).rejects.toThrow(/permission denied/);
    await expect(su.query('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
  });

  it('no role but the trigger can add rows: a forged INSERT by the API or pipeline is refused', async () => {
    const forged =
      "INSERT INTO audit_log (tenant_id, actor_type, actor_id, action, entity) VALUES ($1, 'system', 'x', 'create', 'x')";
    await expect(
      withTenant(apiPool, tenant.tenantId, (db) => db.query(forged, [tenant.tenantId])),
    ).rejects.toThrow(/permission denied/);
    await expect(pipelinePool.query(forged, [tenant.tenantId])).rejects.toThrow(/permission denied/);
  });

  it('the owner may change it (retention), proven inside a rolled-back transaction', async () => {
    await su.query('BEGIN');
    try {
      // The owner is bound by the forced policies too: retention runs per tenant.
      await su.query("SELECT set_config('app.tenant_id', $1, true)", [tenant.tenantId]);
      await su.query('SET LOCAL ROLE parking_owner');
      const result = await su.query('UPDATE audit_log SET actor_id = actor_id WHERE tenant_id = $1', [
        tenant.tenantId,
      ]);
      expect(result.rowCount).toBeGreaterThan(0);
    } finally {
      await su.query('ROLLBACK');
    }
  });
});
