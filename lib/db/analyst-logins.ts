import type { PoolClient } from './pool.js';
import type pg from 'pg';

/**
 * Per-tenant read-only logins for Grafana (schemas/sql: create_analyst_login). The login's tenant is bound to
 * the role itself (analyst_logins, read through session_user), so SQL typed into a dashboard cannot switch
 * tenants with SET. Needs an identity that may create roles (the migration identity), never the API role.
 * Returns the role name, `analyst_<slug>`.
 */
export async function createAnalystLogin(
  db: PoolClient | pg.Client,
  tenantId: string,
  slug: string,
  password: string,
): Promise<string> {
  const { rows } = await db.query<{ role_name: string }>(
    'SELECT create_analyst_login($1, $2, $3) AS role_name',
    [tenantId, slug, password],
  );
  return rows[0]!.role_name;
}

export async function dropAnalystLogin(db: PoolClient | pg.Client, roleName: string): Promise<void> {
  await db.query('SELECT drop_analyst_login($1)', [roleName]);
}
