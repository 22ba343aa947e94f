import type { Pool, PoolClient } from './pool.js';
import { PlatformError } from '../errors.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A plain transaction; rolled back when `work` throws. */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Runs one unit of work as a tenant: a transaction whose first statement sets `app.tenant_id` with
 * set_config(..., is_local => true), i.e. SET LOCAL. The setting ends with the transaction, so a pooled
 * connection never carries one request's tenant into the next. The RLS policies (schemas/sql) read it.
 * This is the only way code touches tenant data through the RLS-bound role.
 */
export async function withTenant<T>(
  pool: Pool,
  tenantId: string,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  if (!uuidPattern.test(tenantId)) throw new PlatformError('VALIDATION_FAILED', 'tenant id must be a UUID');
  return withTransaction(pool, async (client) => {
    await client.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
    return work(client);
  });
}
