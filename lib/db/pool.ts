import pg from 'pg';

/** A bounded pool per database role; `application_name` names the service in pg_stat_activity. */
export function createPool(connectionString: string, applicationName: string, max: number): pg.Pool {
  return new pg.Pool({ connectionString, application_name: applicationName, max, idleTimeoutMillis: 30_000 });
}

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
