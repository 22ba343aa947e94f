import type { Pool, PoolClient } from './pool.js';
import { PlatformError } from '../errors.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Who performs a unit of work; recorded in audit_log by the app_audit() trigger (schemas/sql). */
export interface Actor {
  type: 'user' | 'api_key' | 'system' | 'webhook';
  /** The user id, API key id, service name or webhook source. */
  id: string;
}

/** Optional context of a unit of work: the audit trigger reads it from transaction-local settings. */
export interface TenantContext {
  actor?: Actor;
  /** The request id (X-Request-Id) the audit rows carry. */
  requestId?: string;
}

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
 * Runs one unit of work as a tenant: a transaction whose first statement sets `app.tenant_id` (and, when given,
 * `app.actor_type`, `app.actor_id`, `app.request_id`) with set_config(..., is_local => true), i.e. SET LOCAL.
 * The settings end with the transaction, so a pooled connection never carries one request's tenant or actor
 * into the next. The RLS policies read the tenant; the audit trigger reads the actor and request id (without an
 * actor, audit rows name the actor ('system', <database role>)). This is the only way code touches tenant data
 * through the RLS-bound role.
 */
export async function withTenant<T>(
  pool: Pool,
  tenantId: string,
  work: (client: PoolClient) => Promise<T>,
  context: TenantContext = {},
): Promise<T> {
  if (!uuidPattern.test(tenantId)) throw new PlatformError('VALIDATION_FAILED', 'tenant id must be a UUID');
  return withTransaction(pool, async (client) => {
    await client.query(
      `SELECT set_config('app.tenant_id', $1, true), set_config('app.actor_type', $2, true),
              set_config('app.actor_id', $3, true), set_config('app.request_id', $4, true)`,
      [tenantId, context.actor?.type ?? '', context.actor?.id ?? '', context.requestId ?? ''],
    );
    return work(client);
  });
}
