import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { createAnalystLogin, dropAnalystLogin } from '../db/analyst-logins.js';

/** A connected analyst login (the way Grafana connects) for a tenant; `close()` disconnects and drops it. */
export interface AnalystConnection {
  client: pg.Client;
  roleName: string;
  close(): Promise<void>;
}

/**
 * Creates a tenant's analyst login with a random password through `su` (an identity that may create roles) and
 * connects as it to the database of `migrateUrl`.
 */
export async function connectAnalyst(
  su: pg.Client,
  migrateUrl: string,
  tenantId: string,
  slugPrefix: string,
): Promise<AnalystConnection> {
  const password = randomBytes(18).toString('base64url');
  const roleName = await createAnalystLogin(
    su,
    tenantId,
    `${slugPrefix}_${randomUUID().slice(0, 8)}`,
    password,
  );
  const url = new URL(migrateUrl);
  url.username = roleName;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString() });
  try {
    await client.connect();
  } catch (error) {
    await dropAnalystLogin(su, roleName);
    throw error;
  }
  return {
    client,
    roleName,
    async close() {
      await client.end();
      await dropAnalystLogin(su, roleName);
    },
  };
}
