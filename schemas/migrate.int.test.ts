import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { findProtectionProblems } from '../lib/testing/rls-catalog.js';
import { migrate, migrationsDir } from './migrate.js';

/**
 * The migrations on a fresh database (as CI's fresh cluster sees them; roles already exist cluster-wide here,
 * which the migrations must tolerate): up, the protection check, down to nothing, and up again.
 */
const config = loadConfig();
const database = `parking_scratch_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
let admin: pg.Client;
let scratchUrl: string;

/** CREATE/DROP DATABASE take no parameters and cannot run in a function: the server quotes the name (%I). */
async function runQuoted(template: string) {
  const { rows } = await admin.query<{ sql: string }>('SELECT format($1, $2::text) AS sql', [
    template,
    database,
  ]);
  await admin.query(rows[0]!.sql);
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await admin.connect();
  await runQuoted('CREATE DATABASE %I');
  const url = new URL(config.postgres.migrateUrl);
  url.pathname = `/${database}`;
  scratchUrl = url.toString();
});

afterAll(async () => {
  await runQuoted('DROP DATABASE IF EXISTS %I WITH (FORCE)');
  await admin?.end();
});

describe('migrations on a fresh database', () => {
  it('apply, leave every tenant table protected, roll back completely and apply again', async () => {
    const applied = await migrate(scratchUrl, 'up');
    // Every migration file, in order (each team adds its own).
    const all = readdirSync(migrationsDir)
      .filter((f) => f.endsWith('.sql'))
      .map((f) => f.replace(/\.sql$/, ''))
      .sort();
    expect(applied).toEqual(all);

    const client = new pg.Client({ connectionString: scratchUrl });
    await client.connect();
    try {
      expect(await findProtectionProblems(client)).toEqual([]);
      expect(await migrate(scratchUrl, 'down', Infinity)).toEqual([...all].reverse());
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'pgmigrations'",
      );
      expect(rows[0]!.n).toBe('0');
      expect(await migrate(scratchUrl, 'up')).toEqual(all);
      expect(await findProtectionProblems(client)).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
