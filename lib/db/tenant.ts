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
  return inTransaction(pool, 'BEGIN', work);
}

/** `begin` opens the transaction (and may set it up in the same round trip); COMMIT, or ROLLBACK on a throw. */
async function inTransaction<T>(
  pool: Pool,
  begin: string | ((client: PoolClient) => string),
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // A connection the server ends while it is checked out (a database restart) emits 'error' when no query is
  // running, e.g. while `work` awaits a broker; unheard, that event would crash the process. The next query
  // fails instead, the caller backs off, and the broken connection is destroyed on release, not pooled again.
  let broken: Error | undefined;
  const onError = (error: Error) => void (broken = error);
  client.on('error', onError);
  try {
    await client.query(typeof begin === 'string' ? begin : begin(client));
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

const actorTypes: ReadonlySet<string> = new Set<Actor['type']>(['user', 'api_key', 'system', 'webhook']);

/**
 * Runs one unit of work as a tenant: a transaction whose first statement sets `app.tenant_id` (and, when given,
 * `app.actor_type`, `app.actor_id`, `app.request_id`) with set_config(..., is_local => true), i.e. SET LOCAL.
 * The settings end with the transaction, so a pooled connection never carries one request's tenant or actor
 * into the next. The RLS policies read the tenant; the audit trigger reads the actor and request id (without an
 * actor, audit rows name the actor ('system', <database role>)). This is the only way code touches tenant data
 * through the RLS-bound role.
 *
 * BEGIN and the settings go to the server as one simple-protocol message (`BEGIN; SELECT set_config(...)`), one
 * round trip instead of two; a BEGIN inside a multi-statement message opens a transaction block that outlives the
 * message, so `work` runs in it exactly as after a separate BEGIN. The simple protocol takes no parameters, so the
 * four values are quoted with the driver's escapeLiteral after being checked: the tenant is a UUID, the actor type
 * one of four words; the actor and request ids are arbitrary text, which escapeLiteral quotes safely.
 */
export async function withTenant<T>(
  pool: Pool,
  tenantId: string,
  work: (client: PoolClient) => Promise<T>,
  context: TenantContext = {},
): Promise<T> {
  if (!uuidPattern.test(tenantId)) throw new PlatformError('VALIDATION_FAILED', 'tenant id must be a UUID');
  const actorType = context.actor?.type ?? '';
  if (actorType && !actorTypes.has(actorType))
    throw new PlatformError('VALIDATION_FAILED', `unknown actor type ${actorType}`);
  const begin = (client: PoolClient) => {
    const q = (value: string) => client.escapeLiteral(value);
    return (
      `BEGIN; SELECT set_config('app.tenant_id', ${q(tenantId)}, true), ` +
      `set_config('app.actor_type', ${q(actorType)}, true), ` +
      `set_config('app.actor_id', ${q(context.actor?.id ?? '')}, true), ` +
      `set_config('app.request_id', ${q(context.requestId ?? '')}, true)`
    );
  };
  return inTransaction(pool, begin, work);
}
