import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The service scripts' contract, on a private data folder and private ports so the shared stack is untouched:
 * `up` starts and waits until ready, a second `up` is a no-op, `status` answers 0/3, `down` stops only what
 * `up` started, and data survives `down` + `up` (PostgreSQL rows, Schema Registry ids).
 */
const run = promisify(execFile);
let dataDir: string;
let env: NodeJS.ProcessEnv;
const ports = { pg: 0, registry: 0 };

/** A port nothing listens on now, so concurrent runs of this test never collide. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function service(name: string, command: 'up' | 'down' | 'status') {
  try {
    const { stdout } = await run('bash', [`infra/services/${name}.sh`, command], { env, timeout: 120_000 });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '' };
  }
}

const pidOf = (status: { stdout: string }) => /pid (\d+)/.exec(status.stdout)?.[1];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'parking-stack-test-'));
  ports.pg = await freePort();
  ports.registry = await freePort();
  env = {
    ...process.env,
    PARKING_DATA_DIR: dataDir,
    PG_PORT: String(ports.pg),
    SCHEMA_REGISTRY_PORT: String(ports.registry),
  };
});

afterAll(async () => {
  await service('schema-registry', 'down');
  await service('postgres', 'down');
  await rm(dataDir, { recursive: true, force: true });
});

describe('infra service scripts', () => {
  it('postgres: up is idempotent, status reports, and rows survive down + up', async () => {
    expect((await service('postgres', 'up')).code).toBe(0);
    const first = await service('postgres', 'status');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`127.0.0.1:${ports.pg}`);
    expect((await service('postgres', 'up')).code).toBe(0);
    expect(pidOf(await service('postgres', 'status'))).toBe(pidOf(first));

    const url = `postgres://postgres:${env['PG_SUPERUSER_PASSWORD'] ?? 'postgres-dev'}@127.0.0.1:${ports.pg}/parking`;
    const write = new pg.Client({ connectionString: url });
    await write.connect();
    await write.query('CREATE TABLE survives (v text); INSERT INTO survives VALUES ($$kept$$)');
    await write.end();

    expect((await service('postgres', 'down')).code).toBe(0);
    expect((await service('postgres', 'status')).code).toBe(3);
    expect((await service('postgres', 'up')).code).toBe(0);
    const read = new pg.Client({ connectionString: url });
    await read.connect();
    const { rows } = await read.query<{ v: string }>('SELECT v FROM survives');
    await read.end();
    expect(rows).toEqual([{ v: 'kept' }]);
  });

  it('schema-registry: a registered id still resolves after down + up', async () => {
    expect((await service('schema-registry', 'up')).code).toBe(0);
    const base = `http://127.0.0.1:${ports.registry}`;
    const schema = JSON.stringify({ type: 'record', name: 'Probe', fields: [{ name: 'a', type: 'int' }] });
    const registered = await fetch(`${base}/subjects/probe-value/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema }),
    });
    const { id } = (await registered.json()) as { id: number };
    expect(id).toBeGreaterThan(0);

    expect((await service('schema-registry', 'down')).code).toBe(0);
    expect((await service('schema-registry', 'status')).code).toBe(3);
    await expect(fetch(`${base}/schemas/ids/${id}`)).rejects.toThrow();
    expect((await service('schema-registry', 'up')).code).toBe(0);
    const again = (await (await fetch(`${base}/schemas/ids/${id}`)).json()) as { schema: string };
    expect(JSON.parse(again.schema)).toEqual(JSON.parse(schema));
  });
});
