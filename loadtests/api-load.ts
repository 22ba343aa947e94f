/**
 * Query API load test on the local stack: `users` concurrent virtual users against a separately started API
 * process (`node --import tsx api/main.ts`, its own event loop; this process only generates load and measures).
 *
 * Demo data (seedApiDemo): `tenants` tenants named `bench-api-<n>`, each with `sitesPerTenant` sites, `spacesPerTenant`
 * spaces with a sensor each, a few displays, one operator user and one API key. Written once through the migration
 * identity in bulk SQL and reused by later runs (every insert is ON CONFLICT DO NOTHING).
 *
 * Each user loops over a weighted mix until `count` requests were sent or `durationMs` passed, sleeping
 * `thinkMs` (±50 %) between requests (0: closed loop at saturation). Half the users send a bearer access token
 * (signed with the local development secret, as login would), half an API key. Rate limits stay on (every request
 * still counts in Redis) but are raised so that one source address does not limit 200 users.
 *
 * Reported per route class and overall: p50/p95/p99 in ms (client-side, request start to body read), requests/s,
 * and answers outside the expected statuses (a 409 for an overlapping reservation is expected).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import pg from 'pg';
import { hashApiKey } from '../lib/api-key.js';
import { loadConfig } from '../lib/config.js';
import { createTokenService } from '../api/auth/tokens.js';

export interface ApiLoadOptions {
  users?: number;
  count?: number;
  durationMs?: number;
  thinkMs?: number;
  tenants?: number;
  spacesPerTenant?: number;
  /** An API already running at this base URL (e.g. http://127.0.0.1:28080); otherwise one is started. */
  baseUrl?: string;
}

export interface RouteStats {
  route: string;
  requests: number;
  unexpected: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface ApiLoadResult {
  users: number;
  thinkMs: number;
  spaces: number;
  tenants: number;
  requests: number;
  seconds: number;
  perSecond: number;
  overall: RouteStats;
  routes: RouteStats[];
  /**
   * CPU (user + system) the API process used per measured request, in ms; null when the API was not started here
   * or /proc is not readable. Less sensitive than latency to what else runs on a shared machine.
   */
  apiCpuMsPerRequest: number | null;
}

/** User + system CPU of a process in ms, from /proc (Linux); null elsewhere. */
function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 per second).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

interface BenchTenant {
  tenantId: string;
  userId: string;
  apiKey: string;
  spaceIds: string[];
  devEuis: string[];
}

const scopes = ['spaces:read', 'devices:read', 'reservations:read', 'reservations:write'];

/** Creates (or finds) the demo tenants; idempotent, so repeated runs reuse the same rows. */
export async function seedApiDemo(
  migrateUrl: string,
  tenants: number,
  spacesPerTenant: number,
  sitesPerTenant = 5,
): Promise<BenchTenant[]> {
  const client = new pg.Client({ connectionString: migrateUrl });
  await client.connect();
  try {
    const out: BenchTenant[] = [];
    for (let t = 1; t <= tenants; t++) {
      const slug = `bench-api-${t}`;
      const apiKey = `pk_bench_api_${t}_load_test_key_not_secret`;
      await client.query('BEGIN');
      await client.query('INSERT INTO tenants (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING', [
        slug,
        `Load test ${t}`,
      ]);
      const tenantId = (await client.query<{ id: string }>('SELECT id FROM tenants WHERE slug = $1', [slug]))
        .rows[0]!.id;
      await client.query(
        `INSERT INTO sites (tenant_id, name) SELECT $1, 'Site ' || n FROM generate_series(1, $2) AS n
         ON CONFLICT (tenant_id, name) DO NOTHING`,
        [tenantId, sitesPerTenant],
      );
      // Spaces spread over the sites, a sensor on each (DevEUI from tenant and space number: stable across
      // runs), a display on every tenth, states mixed so the summary has something to count.
      await client.query(
        `WITH site AS (SELECT id, row_number() OVER (ORDER BY name) - 1 AS k FROM sites WHERE tenant_id = $1)
         INSERT INTO spaces (tenant_id, code, name, site_id, state)
         SELECT $1, 'L-' || lpad(n::text, 5, '0'), 'Load ' || n, site.id,
                (ARRAY['free', 'occupied', 'unknown'])[1 + n % 3]
           FROM generate_series(1, $2) AS n JOIN site ON site.k = n % $3
         ON CONFLICT (tenant_id, code) DO NOTHING`,
        [tenantId, spacesPerTenant, sitesPerTenant],
      );
      await client.query(
        `INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec)
         SELECT $1, upper('BA' || lpad(to_hex($2::int), 4, '0') || lpad(to_hex(substr(code, 3)::int), 10, '0')), id,
                'browan-tbms100'
           FROM spaces WHERE tenant_id = $1 AND code LIKE 'L-%'
         ON CONFLICT DO NOTHING`,
        [tenantId, t],
      );
      await client.query(
        `INSERT INTO display_devices (tenant_id, dev_eui, space_id)
         SELECT $1, upper('BB' || lpad(to_hex($2::int), 4, '0') || lpad(to_hex(substr(code, 3)::int), 10, '0')), id
           FROM spaces WHERE tenant_id = $1 AND code LIKE 'L-%' AND substr(code, 3)::int % 10 = 0
         ON CONFLICT DO NOTHING`,
        [tenantId, t],
      );
      await client.query(`INSERT INTO users (email, name) VALUES ($1, $1) ON CONFLICT (email) DO NOTHING`, [
        `${slug}@load.test`,
      ]);
      const userId = (
        await client.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [`${slug}@load.test`])
      ).rows[0]!.id;
      await client.query(
        `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'operator') ON CONFLICT DO NOTHING`,
        [tenantId, userId],
      );
      await client.query(
        `INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, 'load test', $2, $3)
         ON CONFLICT (key_hash) DO NOTHING`,
        [tenantId, hashApiKey(apiKey), scopes],
      );
      await client.query('COMMIT');
      const spaces = await client.query<{ id: string; dev_eui: string }>(
        `SELECT s.id, d.dev_eui FROM spaces s JOIN sensor_devices d ON d.tenant_id = s.tenant_id AND d.space_id = s.id
          WHERE s.tenant_id = $1 AND s.code LIKE 'L-%' ORDER BY s.code`,
        [tenantId],
      );
      out.push({
        tenantId,
        userId,
        apiKey,
        spaceIds: spaces.rows.map((r) => r.id),
        devEuis: spaces.rows.map((r) => r.dev_eui),
      });
    }
    return out;
  } finally {
    await client.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts the API as its own process (own event loop and CPU); resolves once /health/ready answers 200. */
async function startApiProcess(port: number, timeoutMs = 60_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    env: {
      ...process.env,
      API_PORT: String(port),
      LOG_LEVEL: 'warn',
      API_LIVE_GROUP_PREFIX: 'bench-api-live',
      API_RATE_LIMIT_PER_IP: '100000000',
      API_RATE_LIMIT_PER_USER: '100000000',
      API_RATE_LIMIT_PER_API_KEY: '100000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode} while starting`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      await res.arrayBuffer();
      if (res.ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`the API did not become ready within ${timeoutMs} ms`);
}

async function stopApiProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface Call {
  route: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** Statuses that are a correct answer for this call (anything else is counted as unexpected). */
  expect: readonly number[];
}

interface Caller {
  tenant: BenchTenant;
  headers: Record<string, string>;
  /** Next-page cursors this user holds, per list (following pagination like a console scrolling). */
  cursors: Map<string, string>;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** The mix, as weights summing to 100. */
const mix: ReadonlyArray<[number, (c: Caller) => Call]> = [
  [25, (c) => list(c, 'spaces.list', '/api/v6/spaces', 50)],
  [
    15,
    () => ({ route: 'dashboard.summary', method: 'GET', path: '/api/v6/dashboard/summary', expect: [200] }),
  ],
  [15, (c) => list(c, 'devices.list', '/api/v1/devices', 50)],
  [
    10,
    (c) => ({
      route: 'devices.get',
      method: 'GET',
      path: `/api/v1/devices/${pick(c.tenant.devEuis)}`,
      expect: [200],
    }),
  ],
  [
    10,
    (c) => ({
      route: 'spaces.get',
      method: 'GET',
      path: `/api/v6/spaces/${pick(c.tenant.spaceIds)}`,
      expect: [200],
    }),
  ],
  [15, (c) => list(c, 'reservations.list', '/api/v1/reservations', 50)],
  [10, (c) => reserve(c)],
];

function list(c: Caller, route: string, path: string, limit: number): Call {
  const cursor = c.cursors.get(route);
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  return { route, method: 'GET', path: `${path}?${query}`, expect: [200] };
}

function reserve(c: Caller): Call {
  // A random one-hour slot in the next year on a random space: overlaps (409) are rare and expected.
  const start = new Date(Date.now() + 3_600_000 * (1 + Math.floor(Math.random() * 8_760)));
  start.setUTCMinutes(0, 0, 0);
  return {
    route: 'reservations.create',
    method: 'POST',
    path: '/api/v1/reservations',
    body: {
      space_id: pick(c.tenant.spaceIds),
      reserved_from: start.toISOString(),
      reserved_until: new Date(start.getTime() + 3_600_000).toISOString(),
      request_id: randomUUID(),
    },
    expect: [201, 409],
  };
}

function choose(c: Caller): Call {
  let r = Math.random() * 100;
  for (const [weight, make] of mix) {
    r -= weight;
    if (r < 0) return make(c);
  }
  return mix[0]![1](c);
}

function percentiles(route: string, samples: number[], unexpected: number): RouteStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    Math.round((sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN) * 10) / 10;
  return { route, requests: sorted.length, unexpected, p50: at(50), p95: at(95), p99: at(99) };
}

export async function apiLoad({
  users = 200,
  count = 20_000,
  durationMs = 60_000,
  thinkMs = 0,
  tenants = 4,
  spacesPerTenant = 1_500,
  baseUrl,
}: ApiLoadOptions = {}): Promise<ApiLoadResult> {
  const config = loadConfig();
  const demo = await seedApiDemo(config.postgres.migrateUrl, tenants, spacesPerTenant);
  const tokens = createTokenService(config.apiAuth);
  let api: ChildProcess | undefined;
  if (!baseUrl) {
    const port = await freePort();
    api = await startApiProcess(port);
    baseUrl = `http://127.0.0.1:${port}`;
  }
  const agent = new Agent({ keepAlive: true, maxSockets: users });
  try {
    const callers: Caller[] = [];
    for (let u = 0; u < users; u++) {
      const tenant = demo[u % demo.length]!;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (u % 2 === 0) {
        const { accessToken } = await tokens.issue({
          userId: tenant.userId,
          tenantId: tenant.tenantId,
          platformAdmin: false,
        });
        headers.authorization = `Bearer ${accessToken}`;
      } else headers['x-api-key'] = tenant.apiKey;
      callers.push({ tenant, headers, cursors: new Map() });
    }
    // Warm-up: one of each call per tenant (JIT, pool connections, plans), not measured.
    for (const c of callers.slice(0, demo.length * 2))
      for (const [, make] of mix) await send(baseUrl, c, make(c), agent);

    const samples = new Map<string, number[]>();
    const unexpected = new Map<string, number>();
    let sent = 0;
    const cpuBefore = processCpuMs(api?.pid);
    const started = performance.now();
    const deadline = Date.now() + durationMs;
    const run = async (c: Caller) => {
      // Users arrive spread over one think time, not all in the first millisecond.
      if (thinkMs > 0) await new Promise((r) => setTimeout(r, thinkMs * Math.random()));
      while (sent < count && Date.now() < deadline) {
        sent++;
        const call = choose(c);
        const t0 = performance.now();
        // A refused or reset connection counts as an unexpected answer, not as the end of the run.
        const ok = await send(baseUrl!, c, call, agent).catch(() => false);
        const ms = performance.now() - t0;
        const list = samples.get(call.route) ?? [];
        list.push(ms);
        samples.set(call.route, list);
        if (!ok) unexpected.set(call.route, (unexpected.get(call.route) ?? 0) + 1);
        if (thinkMs > 0) await new Promise((r) => setTimeout(r, thinkMs * (0.5 + Math.random())));
      }
    };
    await Promise.all(callers.map(run));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = processCpuMs(api?.pid);
    const all = [...samples.values()].flat();
    const routes = [...samples.entries()]
      .map(([route, s]) => percentiles(route, s, unexpected.get(route) ?? 0))
      .sort((a, b) => a.route.localeCompare(b.route));
    const totalUnexpected = [...unexpected.values()].reduce((a, b) => a + b, 0);
    return {
      users,
      thinkMs,
      tenants: demo.length,
      spaces: demo.reduce((n, t) => n + t.spaceIds.length, 0),
      requests: all.length,
      seconds: Math.round(seconds * 10) / 10,
      perSecond: Math.round(all.length / seconds),
      overall: percentiles('overall', all, totalUnexpected),
      routes,
      apiCpuMsPerRequest:
        cpuBefore === null || cpuAfter === null || all.length === 0
          ? null
          : Math.round(((cpuAfter - cpuBefore) / all.length) * 100) / 100,
    };
  } finally {
    agent.destroy();
    if (api) await stopApiProcess(api);
  }
}

/**
 * Sends one call; true when the status was expected. Follows list pagination (keeps the next cursor). node:http
 * with a keep-alive agent rather than fetch: it costs the generator less CPU, which on a 2-core machine is taken
 * from the API and the database.
 */
async function send(baseUrl: string, c: Caller, call: Call, agent: Agent): Promise<boolean> {
  const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      baseUrl + call.path,
      {
        method: call.method,
        agent,
        headers: payload ? { ...c.headers, 'content-length': Buffer.byteLength(payload) } : c.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  if (status === 200 && call.route.endsWith('.list')) {
    const body = JSON.parse(text) as { page?: { nextCursor?: string | null }; next_cursor?: string | null };
    const next = body.page?.nextCursor ?? body.next_cursor ?? null;
    // A user scrolls at most a few pages, then starts over from the first.
    if (next && Math.random() < 0.7) c.cursors.set(call.route, next);
    else c.cursors.delete(call.route);
  }
  return call.expect.includes(status);
}

/** Prints a result as the table run.ts shows. */
export function formatApiLoad(r: ApiLoadResult): string[] {
  const row = (s: RouteStats) =>
    `  ${s.route.padEnd(20)} ${String(s.requests).padStart(7)} req  p50 ${String(s.p50).padStart(6)} ms  p95 ${String(s.p95).padStart(6)} ms  p99 ${String(s.p99).padStart(6)} ms${s.unexpected ? `  (${s.unexpected} unexpected statuses)` : ''}`;
  return [
    `query API, ${r.users} users (think ${r.thinkMs} ms), ${r.tenants} tenants / ${r.spaces} spaces: ${r.requests} requests in ${r.seconds} s = ${r.perSecond} requests/s`,
    ...r.routes.map(row),
    row(r.overall),
    ...(r.apiCpuMsPerRequest === null ? [] : [`  API process CPU per request: ${r.apiCpuMsPerRequest} ms`]),
  ];
}
