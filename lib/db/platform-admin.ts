import type { Pool, PoolClient } from './pool.js';
import { withTransaction } from './tenant.js';
import { PlatformError } from '../errors.js';

export interface PlatformAdminAccess {
  /** The platform admin (users.id, listed in platform_admins). */
  userId: string;
  /** Why the cross-tenant read happens; stored in platform_admin_access_log. */
  reason: string;
  requestId?: string;
}

/**
 * The one path to cross-tenant reads. In one transaction on the API pool: app_platform_admin_begin() checks the
 * user is an active platform admin and writes the access row (who, why, request, transaction id), then
 * `SET LOCAL ROLE parking_platform_admin`, whose policies let it SELECT every tenant's rows only while such a
 * row exists for the current transaction. That role has no write privileges and no access to secrets
 * (refresh tokens, webhook secrets). The role ends with the transaction, like the tenant of withTenant.
 */
export async function withPlatformAdmin<T>(
  pool: Pool,
  access: PlatformAdminAccess,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  if (access.reason.trim().length < 3) {
    throw new PlatformError('VALIDATION_FAILED', 'a platform-admin read needs a reason');
  }
  return withTransaction(pool, async (client) => {
    try {
      await client.query('SELECT app_platform_admin_begin($1, $2, $3)', [
        access.userId,
        access.reason,
        access.requestId ?? null,
      ]);
    } catch (error) {
      throw new PlatformError('FORBIDDEN', 'not a platform admin', { cause: error });
    }
    await client.query('SET LOCAL ROLE parking_platform_admin');
    return work(client);
  });
}
