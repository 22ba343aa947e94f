import type pg from 'pg';

/**
 * The database catalog as the RLS suite sees it (lib/db/rls.int.test.ts): which tables are tenant tables, and
 * what is wrong with their protection. Generated from pg_class/pg_attribute/pg_policy so a new table is checked
 * the moment a migration creates it.
 */
type Queryable = Pick<pg.Client, 'query'>;

export interface TenantTable {
  name: string;
  /** `tenant_id`, or `id` for the tenants table itself. */
  keyColumn: string;
  hypertable: boolean;
  primaryKey: string[];
}

/** Tables without tenant_id, each with the reason it is global; any other such table fails the suite. */
export const globalTables: Record<string, string> = {
  users: 'global identities; visible through a membership in the current tenant (policy tenant_members)',
  platform_admins: 'platform staff; read only through the audited platform-admin path',
  platform_admin_access_log: 'append-only log of platform-admin reads',
  device_types: 'platform device catalog, read-only for tenants',
  pgmigrations: "node-pg-migrate's bookkeeping, no grants to any application role",
  processor_offsets:
    'consumer offsets per (group, topic, partition) stored with the results; pipeline role only (BYPASSRLS)',
  downlink_buckets:
    'downlink token buckets per gateway (physical duty cycle, any tenant) and per tenant; pipeline role only (BYPASSRLS)',
};

/** Global lookup indexes allowed not to start with tenant_id (DevEUIs, EUIs, hashes, role names, users). */
export const globalIndexes = new Set([
  'sensor_devices_dev_eui_key',
  'display_devices_dev_eui_key',
  'gateways_gw_eui_key',
  'chirpstack_applications_application_id_key',
  'api_keys_key_hash_key',
  'refresh_tokens_token_hash_key',
  'analyst_logins_role_name_key',
  'memberships_user',
  'tenants_slug_key',
]);

export async function listTenantTables(db: Queryable, schema = 'public'): Promise<TenantTable[]> {
  const { rows } = await db.query<{
    name: string;
    key_column: string;
    hypertable: boolean;
    primary_key: string[];
  }>(
    `SELECT c.relname AS name,
            CASE WHEN c.relname = 'tenants' AND n.nspname = 'public' THEN 'id' ELSE 'tenant_id' END AS key_column,
            EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                     WHERE h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname) AS hypertable,
            coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                        FROM pg_index i
                        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                       WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS primary_key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
             OR (n.nspname = 'public' AND c.relname = 'tenants'))
      ORDER BY c.relname`,
    [schema],
  );
  return rows.map((r) => ({
    name: r.name,
    keyColumn: r.key_column,
    hypertable: r.hypertable,
    primaryKey: r.primary_key,
  }));
}

/**
 * Everything wrong with the protection of the tables in `schema`, as readable lines; empty when all is well.
 * Per tenant table: tenant key first in the primary key and in every index (but the global lookups), RLS enabled
 * and forced, the four policies of app_protect_tenant_table() with the expected expressions, and the audit
 * trigger (plain tables) or chunk-privilege trigger (hypertables). Per other table: listed in globalTables, with
 * RLS enabled and forced (except pgmigrations).
 */
export async function findProtectionProblems(db: Queryable, schema = 'public'): Promise<string[]> {
  const problems: string[] = [];
  const tenantTables = await listTenantTables(db, schema);
  const { rows: tables } = await db.query<{ name: string; rls: boolean; forced: boolean }>(
    `SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
    [schema],
  );
  const { rows: policies } = await db.query<{
    table: string;
    name: string;
    permissive: string;
    roles: string[];
    cmd: string;
    qual: string | null;
    with_check: string | null;
  }>(
    `SELECT tablename AS table, policyname AS name, permissive, roles::text[] AS roles, cmd, qual, with_check
       FROM pg_policies WHERE schemaname = $1`,
    [schema],
  );
  const { rows: indexes } = await db.query<{ table: string; index: string; first_column: string | null }>(
    `SELECT t.relname AS table, ic.relname AS index, a.attname AS first_column
       FROM pg_index i
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
      WHERE n.nspname = $1`,
    [schema],
  );
  const { rows: triggers } = await db.query<{ table: string; name: string }>(
    `SELECT c.relname AS table, tg.tgname AS name
       FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT tg.tgisinternal`,
    [schema],
  );
  // An audit_update trigger (schemas/sql/1733900000000_audit-when.sql) names the columns it watches: a column
  // added later and not watched would let an actorless change of it go unaudited.
  const { rows: unwatched } = await db.query<{ table: string; column: string }>(
    `SELECT c.relname AS table, a.attname AS column
       FROM pg_trigger tg
       JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = tg.tgrelid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND tg.tgname = 'audit_update'
        AND NOT a.attname = ANY (array_remove(string_to_array(encode(tg.tgargs, 'escape'), '\\000'), ''))
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_trigger'::regclass AND d.objid = tg.oid
                          AND d.refobjid = tg.tgrelid AND d.refobjsubid = a.attnum)`,
    [schema],
  );
  for (const u of unwatched)
    problems.push(`${u.table}: audit_update does not watch column ${u.column} (re-create the table's audit)`);
  const tenantNames = new Set(tenantTables.map((t) => t.name));

  for (const table of tenantTables) {
    const key = table.keyColumn;
    const meta = tables.find((t) => t.name === table.name);
    if (!meta?.rls) problems.push(`${table.name}: row-level security is not enabled`);
    if (!meta?.forced) problems.push(`${table.name}: row-level security is not forced`);
    if (table.primaryKey[0] !== key) problems.push(`${table.name}: primary key does not start with ${key}`);
    for (const index of indexes.filter((i) => i.table === table.name)) {
      if (index.first_column !== key && !globalIndexes.has(index.index))
        problems.push(`${table.name}: index ${index.index} does not start with ${key}`);
    }
    const own = policies.filter((p) => p.table === table.name);
    const expect = (name: string, check: (p: (typeof own)[number]) => boolean, what: string) => {
      const policy = own.find((p) => p.name === name);
      if (!policy) problems.push(`${table.name}: policy ${name} is missing`);
      else if (!check(policy)) problems.push(`${table.name}: policy ${name} is not ${what}`);
    };
    const isolation = `(${key} = app_current_tenant())`;
    const analyst = `(${key} = ( SELECT app_analyst_tenant() AS app_analyst_tenant))`;
    expect(
      'tenant_isolation',
      (p) =>
        p.permissive === 'PERMISSIVE' &&
        p.cmd === 'ALL' &&
        p.roles.join() === 'public' &&
        p.qual === isolation &&
        p.with_check === isolation,
      `FOR ALL TO PUBLIC USING/WITH CHECK ${isolation}`,
    );
    expect(
      'analyst_read',
      (p) => p.cmd === 'SELECT' && p.roles.join() === 'parking_analyst' && p.qual === analyst,
      `FOR SELECT TO parking_analyst USING ${analyst}`,
    );
    expect(
      'analyst_bound',
      (p) => p.permissive === 'RESTRICTIVE' && p.roles.join() === 'parking_analyst' && p.qual === analyst,
      `RESTRICTIVE TO parking_analyst USING ${analyst}`,
    );
    expect(
      'platform_admin_read',
      (p) => p.cmd === 'SELECT' && p.roles.join() === 'parking_platform_admin',
      'FOR SELECT TO parking_platform_admin',
    );
    // Any other permissive policy could widen what a role sees; the known one is audit_append (INSERT only).
    for (const p of own) {
      const known = ['tenant_isolation', 'analyst_read', 'analyst_bound', 'platform_admin_read'];
      if (known.includes(p.name)) continue;
      if (!(table.name === 'audit_log' && p.name === 'audit_append' && p.cmd === 'INSERT'))
        problems.push(`${table.name}: unexpected policy ${p.name}`);
    }
    const names = triggers.filter((t) => t.table === table.name).map((t) => t.name);
    if (table.hypertable && !names.includes('chunk_privileges'))
      problems.push(`${table.name}: hypertable without the chunk_privileges trigger`);
    if (!table.hypertable && table.name !== 'audit_log' && !names.includes('audit'))
      problems.push(`${table.name}: no audit trigger`);
  }
  for (const table of tables.filter((t) => !tenantNames.has(t.name))) {
    if (schema === 'public' && !(table.name in globalTables))
      problems.push(`${table.name}: no tenant_id and not listed as a global table`);
    else if (table.name !== 'pgmigrations' && (!table.rls || !table.forced))
      problems.push(`${table.name}: global table without forced row-level security`);
  }
  return problems;
}

/** Chunks of any hypertable that grant anything to a role bound by RLS (or PUBLIC). */
export async function findExposedChunks(db: Queryable): Promise<Array<{ chunk: string; grantee: string }>> {
  const { rows } = await db.query<{ chunk: string; grantee: string }>(
    `SELECT format('%I.%I', ch.chunk_schema, ch.chunk_name) AS chunk,
            CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
       FROM timescaledb_information.chunks ch
       JOIN pg_namespace n ON n.nspname = ch.chunk_schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ch.chunk_name
       CROSS JOIN LATERAL aclexplode(c.relacl) AS a
      WHERE a.grantee <> c.relowner
        AND (a.grantee = 0 OR NOT (SELECT r.rolbypassrls OR r.rolsuper FROM pg_roles r WHERE r.oid = a.grantee))`,
  );
  return rows;
}
