import type { RequestHandler } from 'express';
import { hashApiKey } from '../lib/api-key.js';
import type { Pool } from '../lib/db/pool.js';
import { PlatformError } from '../lib/errors.js';

export interface Principal {
  tenantId: string;
  keyId: string;
  scopes: string[];
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * `X-API-Key` authentication: the key's SHA-256 is looked up through authenticate_api_key(), a SECURITY
 * DEFINER function (no tenant is known yet, and RLS hides api_keys without one). Only the hash is stored.
 * JWT logins, roles and rate limits arrive with the API issue.
 */
export function apiKeyAuth(pool: Pool): RequestHandler {
  return async (req, _res, next) => {
    const key = req.get('x-api-key');
    if (!key) throw new PlatformError('UNAUTHENTICATED', 'missing X-API-Key header');
    const { rows } = await pool.query<{ tenant_id: string; key_id: string; scopes: string[] }>(
      'SELECT tenant_id, key_id, scopes FROM authenticate_api_key($1)',
      [hashApiKey(key)],
    );
    const row = rows[0];
    if (!row) throw new PlatformError('UNAUTHENTICATED', 'unknown or revoked API key');
    req.principal = { tenantId: row.tenant_id, keyId: row.key_id, scopes: row.scopes };
    next();
  };
}

export function principalOf(req: { principal?: Principal }): Principal {
  if (!req.principal) throw new PlatformError('UNAUTHENTICATED', 'not authenticated');
  return req.principal;
}
