import pg from 'pg';

/** A bounded pool per database role; `application_name` names the service in pg_stat_activity. */
export function createPool(connectionString: string, applicationName: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    application_name: applicationName,
    max,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection the server ends (a database restart) is dropped from the pool and reported here; unheard,
  // the 'error' event would crash the process. The next checkout opens a new connection, or fails and the caller
  // backs off.
  pool.on('error', () => undefined);
  return pool;
}

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
