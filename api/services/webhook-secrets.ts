import { randomBytes } from 'node:crypto';
import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';

/**
 * The tenant's webhook signing secrets (table webhook_secrets, read by ingest for `POST /api/v1/uplink`). The
 * secret is a 43-character base64url string and the stored HMAC key is its UTF-8 bytes, so a sender keys the
 * HMAC with exactly the text it was given. It is returned only by create and rotate.
 */
export interface SecretRow {
  id: string;
  status: 'current' | 'previous' | 'revoked';
  created_at: Date;
  rotated_at: Date | null;
  expires_at: Date | null;
}

/** How long the previous secret stays valid after a rotation, so senders can switch over. */
export const previousSecretValidityS = 24 * 3600;

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

async function insertCurrent(db: PoolClient, tenantId: string): Promise<{ row: SecretRow; secret: string }> {
  const secret = newSecret();
  const { rows } = await db.query<SecretRow>(
    `INSERT INTO webhook_secrets (tenant_id, secret) VALUES ($1, $2)
     RETURNING id, status, created_at, rotated_at, expires_at`,
    [tenantId, Buffer.from(secret, 'utf8')],
  );
  return { row: rows[0]!, secret };
}

/** The first secret of a tenant; CONFLICT when it has one already (rotate instead). */
export async function createWebhookSecret(
  db: PoolClient,
  tenantId: string,
): Promise<{ row: SecretRow; secret: string }> {
  const { rowCount } = await db.query(
    "SELECT 1 FROM webhook_secrets WHERE tenant_id = $1 AND status = 'current' FOR UPDATE",
    [tenantId],
  );
  if (rowCount) throw new PlatformError('CONFLICT', 'the tenant has a webhook secret; rotate it instead');
  return insertCurrent(db, tenantId);
}

/**
 * Rotation: the previous secret is revoked, the current one becomes previous (valid for
 * `previousSecretValidityS` more), a new current one is made. With no secret yet it just makes one.
 */
export async function rotateWebhookSecret(
  db: PoolClient,
  tenantId: string,
): Promise<{ row: SecretRow; secret: string }> {
  await db.query(
    "UPDATE webhook_secrets SET status = 'revoked' WHERE tenant_id = $1 AND status = 'previous'",
    [tenantId],
  );
  await db.query(
    `UPDATE webhook_secrets SET status = 'previous', rotated_at = now(),
       expires_at = now() + make_interval(secs => $2)
     WHERE tenant_id = $1 AND status = 'current'`,
    [tenantId, previousSecretValidityS],
  );
  return insertCurrent(db, tenantId);
}

/** The tenant's secrets, newest first (never the secret itself). */
export async function listWebhookSecrets(db: PoolClient, tenantId: string): Promise<SecretRow[]> {
  const { rows } = await db.query<SecretRow>(
    `SELECT id, status, created_at, rotated_at, expires_at FROM webhook_secrets
      WHERE tenant_id = $1 ORDER BY created_at DESC, id LIMIT 100`,
    [tenantId],
  );
  return rows;
}
