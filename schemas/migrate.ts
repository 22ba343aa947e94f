/**
 * Migration CLI: `tsx schemas/migrate.ts up|down [count]`. Runs node-pg-migrate over schemas/sql (SQL files
 * with `-- Up Migration` / `-- Down Migration` sections) as the migration identity, holding node-pg-migrate's
 * advisory lock so two runners never interleave. When PG_API_PASSWORD / PG_PIPELINE_PASSWORD are set (lib/config.ts),
 * it sets the login roles' passwords (the local stack passes its development passwords; production sets its own).
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { loadConfig } from '../lib/config.js';
import { isMain } from '../lib/is-main.js';

export const migrationsDir = fileURLToPath(new URL('./sql', import.meta.url));

export async function migrate(
  databaseUrl: string,
  direction: 'up' | 'down' = 'up',
  count?: number,
): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: migrationsDir,
    direction,
    count: count ?? (direction === 'up' ? Infinity : 1),
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    singleTransaction: true,
    log: () => undefined,
  });
  return applied.map((m) => m.name);
}

/** Sets a login role's password without building SQL from the value: format(%L) runs inside the server. */
export async function setRolePassword(
  databaseUrl: string,
  role: 'parking_api' | 'parking_pipeline',
  password: string,
) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      "SELECT set_config('parking.role_name', $1, true), set_config('parking.role_password', $2, true)",
      [role, password],
    );
    await client.query(
      "DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', current_setting('parking.role_name'), current_setting('parking.role_password')); END $$",
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

async function main() {
  const [, , command = 'up', countArg] = process.argv;
  if (command !== 'up' && command !== 'down') throw new Error(`usage: migrate.ts up|down [count]`);
  const config = loadConfig();
  const applied = await migrate(config.postgres.migrateUrl, command, countArg ? Number(countArg) : undefined);
  console.log(
    applied.length ? `migrations ${command}: ${applied.join(', ')}` : `migrations ${command}: nothing to do`,
  );
  const { api, pipeline } = config.postgres.rolePasswords;
  if (api) await setRolePassword(config.postgres.migrateUrl, 'parking_api', api);
  if (pipeline) await setRolePassword(config.postgres.migrateUrl, 'parking_pipeline', pipeline);
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
