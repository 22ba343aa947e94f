import { withTransaction } from '../../lib/db/tenant.js';
import type { Pool } from '../../lib/db/pool.js';
import { hashPassword } from '../auth/passwords.js';

/** The shortest password registration accepts. */
export const minPasswordLength = 8;

export interface Registration {
  tenantName: string;
  email: string;
  password: string;
  /** The owner's display name; default: the email's local part. */
  name?: string | undefined;
}

/**
 * Self-service registration: a new tenant with the caller as its owner, through the SECURITY DEFINER
 * register_tenant() (schemas/sql/1733300000000_register.sql; parking_api may not create tenants or users). The
 * tenant and membership rows are audited with the new owner as actor and `requestId`. A taken email: CONFLICT
 * (unique violation, mapped by the route helper). The one implementation behind v5 and v6.
 */
export async function registerTenant(
  pool: Pool,
  input: Registration,
  requestId: string,
): Promise<{ tenantId: string; userId: string }> {
  const passwordHash = await hashPassword(input.password);
  return withTransaction(pool, async (db) => {
    const { rows } = await db.query<{ tenant_id: string; user_id: string }>(
      'SELECT tenant_id, user_id FROM register_tenant($1, $2, $3, $4, $5)',
      [input.tenantName, input.email.toLowerCase(), input.name ?? null, passwordHash, requestId],
    );
    const row = rows[0]!;
    return { tenantId: row.tenant_id, userId: row.user_id };
  });
}
