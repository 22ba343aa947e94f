import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { validate } from '@readme/openapi-parser';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db/pool.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { createLogger } from '../lib/logger.js';
import { createTestTenant, randomDevEui, type TestTenant } from '../lib/testing/fixtures.js';
import { apiBase, createApp, v6Routes, type ApiDeps } from './app.js';
import { hashPassword } from './auth/passwords.js';
import { createTokenService, tokenAudience, tokenIssuer } from './auth/tokens.js';
import { createRedisRateLimiter } from './http/rate-limit.js';

/**
 * The v6 API through HTTP against the real database (and Redis for the limits): authentication and the auth
 * matrix, refresh rotation and reuse detection, tenant selection and the audited platform-admin switch, one
 * audit row per mutation, validation, paging, a cross-tenant walk over every route, rate limits, OpenAPI.
 */
const config = loadConfig();
const logger = createLogger('api-test', 'silent');
const secret = config.apiAuth.jwtSecret;
const password = 'correct horse battery staple';
const generous = { windowS: 60, perIp: 100_000, perUser: 100_000, perApiKey: 100_000 };

let su: pg.Client;
let pool: Pool;
let redis: Redis;
let server: Server;
let base: string;
let a: TestTenant;
let b: TestTenant;
const users: Record<'ownerA' | 'viewerA' | 'ownerB' | 'multi' | 'platform', { id: string; email: string }> =
  {} as never;

function deps(overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    apiPool: pool,
    logger,
    tokens: createTokenService({ jwtSecret: secret, accessTokenTtlS: 300 }),
    refreshTokenTtlS: 3_600,
    limits: generous,
    ...overrides,
  };
}

async function makeUser(name: string, memberships: Array<[string, string]>, platformAdmin = false) {
  const email = `${name}-${randomUUID().slice(0, 8)}@example.test`;
  const { rows } = await su.query<{ id: string }>(
    'INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id',
    [email, name, await hashPassword(password)],
  );
  const id = rows[0]!.id;
  for (const [tenantId, role] of memberships)
    await su.query('INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)', [
      tenantId,
      id,
      role,
    ]);
  if (platformAdmin) await su.query('INSERT INTO platform_admins (user_id) VALUES ($1)', [id]);
  return { id, email };
}

interface Call {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  options: { token?: string; key?: string; tenant?: string; body?: unknown; requestId?: string } = {},
): Promise<Call> {
  const headers: Record<string, string> = {};
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (options.key) headers['x-api-key'] = options.key;
  if (options.tenant) headers['x-tenant-id'] = options.tenant;
  if (options.requestId) headers['x-request-id'] = options.requestId;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${apiBase}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: response.headers,
  };
}

async function login(email: string, tenantId?: string) {
  const r = await call('POST', '/auth/login', {
    body: { email, password, ...(tenantId ? { tenantId } : {}) },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { accessToken: string; refreshToken: string | null; tenantId: string | null };
}

async function auditRows(tenantId: string, requestId: string) {
  return (
    await su.query<{ actor_type: string; actor_id: string; action: string; entity: string }>(
      'SELECT actor_type, actor_id, action, entity FROM audit_log WHERE tenant_id = $1 AND request_id = $2',
      [tenantId, requestId],
    )
  ).rows;
}

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  pool = createPool(config.postgres.apiUrl, 'api-test', 4);
  redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
  [a, b] = await Promise.all([createTestTenant(), createTestTenant()]);
  users.ownerA = await makeUser('owner-a', [[a.tenantId, 'owner']]);
  users.viewerA = await makeUser('viewer-a', [[a.tenantId, 'viewer']]);
  users.ownerB = await makeUser('owner-b', [[b.tenantId, 'owner']]);
  users.multi = await makeUser('multi', [
    [a.tenantId, 'admin'],
    [b.tenantId, 'viewer'],
  ]);
  users.platform = await makeUser('platform', [[a.tenantId, 'viewer']], true);
  ({ server } = await listen(createApp(deps()), '127.0.0.1', 0).then((l) => {
    base = `http://127.0.0.1:${l.port}`;
    return l;
  }));
});

afterAll(async () => {
  if (server) await closeServer(server);
  redis?.disconnect();
  await pool?.end();
  await su?.end();
});

describe('authentication and the auth matrix', () => {
  it('no token, bad token, alg:none, expired, tampered -> 401; wrong role, wrong scope -> 403; other tenant -> 404', async () => {
    const { accessToken } = await login(users.viewerA.email);
    const [header, payload, signature] = accessToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, tid: b.tenantId })).toString('base64url')}.${signature}`;
    const expired = await new SignJWT({ tid: a.tenantId, pa: false })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(users.viewerA.id)
      .setIssuer(tokenIssuer)
      .setAudience(tokenAudience)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(secret));
    const path = `/spaces/${a.spaceId}`;
    const cases: Array<[string, Promise<Call>, number]> = [
      ['no token', call('GET', path), 401],
      ['bad token', call('GET', path, { token: 'not.a.jwt' }), 401],
      ['alg:none', call('GET', path, { token: none }), 401],
      ['expired', call('GET', path, { token: expired }), 401],
      ['tampered', call('GET', path, { token: tampered }), 401],
      ['unknown API key', call('GET', path, { key: 'pk_test_nope' }), 401],
      ['valid token', call('GET', path, { token: accessToken }), 200],
      ['wrong role', call('POST', '/sites', { token: accessToken, body: { name: 'x' } }), 403],
      ['wrong scope', call('POST', '/sites', { key: a.apiKey, body: { name: 'x' } }), 403],
      ['other tenant (token)', call('GET', `/spaces/${b.spaceId}`, { token: accessToken }), 404],
      ['other tenant (key)', call('GET', `/spaces/${b.spaceId}`, { key: a.apiKey }), 404],
      ['tenant not a member of', call('GET', path, { token: accessToken, tenant: b.tenantId }), 403],
    ];
    for (const [name, pending, status] of cases) {
      const r = await pending;
      expect({ name, status: r.status }).toEqual({ name, status });
      if (status >= 400) expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('a wrong password and an unknown email get the same 401', async () => {
    const wrong = await call('POST', '/auth/login', {
      body: { email: users.ownerA.email, password: 'nope' },
    });
    const unknown = await call('POST', '/auth/login', { body: { email: 'nobody@example.test', password } });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body['detail']).toBe(unknown.body['detail']);
  });
});

describe('refresh tokens', () => {
  it('rotate on every refresh; reusing a rotated one revokes the whole family', async () => {
    const first = await login(users.ownerA.email);
    const second = await call('POST', '/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(second.status).toBe(200);
    const rotated = second.body['refreshToken'] as string;
    expect(rotated).not.toBe(first.refreshToken);
    expect((await call('GET', '/me', { token: second.body['accessToken'] as string })).status).toBe(200);
    const reuse = await call('POST', '/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body['detail']).toContain('reused');
    // The thief's reuse also ended the legitimate holder's newer token.
    expect((await call('POST', '/auth/refresh', { body: { refreshToken: rotated } })).status).toBe(401);
  });

  it('logout revokes the refresh token; a forged tenant in the token finds nothing', async () => {
    const session = await login(users.ownerA.email);
    expect(
      (await call('POST', '/auth/logout', { body: { refreshToken: session.refreshToken } })).status,
    ).toBe(204);
    expect(
      (await call('POST', '/auth/refresh', { body: { refreshToken: session.refreshToken } })).status,
    ).toBe(401);
    const other = await login(users.ownerA.email);
    const forged = other.refreshToken!.replace(a.tenantId, b.tenantId);
    expect((await call('POST', '/auth/refresh', { body: { refreshToken: forged } })).status).toBe(401);
  });
});

describe('tenant selection', () => {
  it('a user with two memberships switches with X-Tenant-Id and gets that membership role', async () => {
    const { accessToken, tenantId } = await login(users.multi.email, a.tenantId);
    expect(tenantId).toBe(a.tenantId);
    const inB = await call('GET', '/me', { token: accessToken, tenant: b.tenantId });
    expect(inB.body).toMatchObject({ kind: 'member', tenantId: b.tenantId, role: 'viewer' });
    expect(
      (await call('GET', `/spaces/${b.spaceId}`, { token: accessToken, tenant: b.tenantId })).status,
    ).toBe(200);
    expect(
      (await call('POST', '/sites', { token: accessToken, tenant: b.tenantId, body: { name: 'n' } })).status,
    ).toBe(403);
    const created = await call('POST', '/sites', {
      token: accessToken,
      body: { name: `multi ${randomUUID()}` },
    });
    expect(created.status).toBe(201);
  });

  it('a platform admin reads another tenant without logging in again, read-only, each access logged', async () => {
    const { accessToken } = await login(users.platform.email);
    const requestId = `pa-${randomUUID()}`;
    const r = await call('GET', '/spaces', { token: accessToken, tenant: b.tenantId, requestId });
    expect(r.status).toBe(200);
    expect((r.body['data'] as Array<{ id: string }>).map((s) => s.id)).toEqual([b.spaceId]);
    const logged = await su.query<{ user_id: string; reason: string }>(
      'SELECT user_id, reason FROM platform_admin_access_log WHERE request_id = $1',
      [requestId],
    );
    expect(logged.rows).toHaveLength(1);
    expect(logged.rows[0]).toMatchObject({ user_id: users.platform.id });
    expect(logged.rows[0]!.reason).toContain(b.tenantId);
    expect(
      (await call('POST', '/sites', { token: accessToken, tenant: b.tenantId, body: { name: 'x' } })).status,
    ).toBe(403);
    // Its own tenant is an ordinary membership: no platform-admin access row.
    const own = `own-${randomUUID()}`;
    expect((await call('GET', '/spaces', { token: accessToken, requestId: own })).status).toBe(200);
    expect(
      (await su.query('SELECT 1 FROM platform_admin_access_log WHERE request_id = $1', [own])).rowCount,
    ).toBe(0);
  });
});

describe('mutations', () => {
  it('each leaves exactly one audit row with the actor and the request id', async () => {
    const { accessToken } = await login(users.ownerA.email);
    const sensor = randomDevEui();
    const display = randomDevEui();
    await su.query(
      "INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'browan-tbms100')",
      [a.tenantId, sensor],
    );
    await su.query('INSERT INTO display_devices (tenant_id, dev_eui) VALUES ($1, $2)', [a.tenantId, display]);
    const ids: Record<string, string> = {};
    const steps: Array<[string, string, () => unknown, number, string, string]> = [
      [
        'POST',
        '/sites',
        () => ({ name: `Site ${randomUUID()}`, timezone: 'Europe/Berlin' }),
        201,
        'sites',
        'create',
      ],
      ['PATCH', '/sites/{site}', () => ({ address: 'Main St 1' }), 200, 'sites', 'update'],
      [
        'POST',
        '/spaces',
        () => ({ code: `C-${randomUUID().slice(0, 6)}`, name: 'C', siteId: ids['site'] }),
        201,
        'spaces',
        'create',
      ],
      ['PATCH', '/spaces/{space}', () => ({ floor: '2' }), 200, 'spaces', 'update'],
      [
        'PUT',
        '/spaces/{space}/sensor',
        () => ({ devEui: sensor.toLowerCase() }),
        200,
        'sensor_devices',
        'update',
      ],
      ['PUT', '/spaces/{space}/display', () => ({ devEui: display }), 200, 'display_devices', 'update'],
      ['DELETE', '/spaces/{space}/sensor', () => undefined, 204, 'sensor_devices', 'update'],
      ['DELETE', '/spaces/{space}/display', () => undefined, 204, 'display_devices', 'update'],
      ['DELETE', '/spaces/{space}', () => undefined, 204, 'spaces', 'delete'],
      ['DELETE', '/sites/{site}', () => undefined, 204, 'sites', 'delete'],
      ['POST', '/api-keys', () => ({ name: 'ci', scopes: ['spaces:read'] }), 201, 'api_keys', 'create'],
      ['DELETE', '/api-keys/{key}', () => undefined, 204, 'api_keys', 'update'],
    ];
    for (const [method, template, body, status, entity, action] of steps) {
      const path = template.replace(/\{(\w+)\}/g, (_m, k: string) => ids[k]!);
      const requestId = `audit-${randomUUID()}`;
      const r = await call(method, path, { token: accessToken, body: body(), requestId });
      expect({ path, status: r.status, body: r.status === status ? null : r.body }).toEqual({
        path,
        status,
        body: null,
      });
      expect(r.headers.get('x-request-id')).toBe(requestId);
      if (template === '/sites') ids['site'] = r.body['id'] as string;
      if (template === '/spaces') ids['space'] = r.body['id'] as string;
      if (template === '/api-keys') ids['key'] = r.body['id'] as string;
      if (template.endsWith('/sensor') && method === 'PUT') expect(r.body['sensorDevEui']).toBe(sensor);
      expect(await auditRows(a.tenantId, requestId)).toEqual([
        { actor_type: 'user', actor_id: users.ownerA.id, action, entity },
      ]);
    }
    const log = await call('GET', `/audit-log?entity=sites&entityId=${ids['site']}&sort=at`, {
      token: accessToken,
    });
    expect((log.body['data'] as Array<{ action: string }>).map((e) => e.action)).toEqual([
      'create',
      'update',
      'delete',
    ]);
  });

  it('an API key is shown once, works with its scopes, is never listed, and stops working when revoked', async () => {
    const { accessToken } = await login(users.ownerA.email);
    const created = await call('POST', '/api-keys', {
      token: accessToken,
      body: { name: 'integration', scopes: ['spaces:read'] },
    });
    const key = created.body['key'] as string;
    expect(key).toMatch(/^pk_live_/);
    expect((await call('GET', '/spaces', { key })).status).toBe(200);
    const listed = await call('GET', '/api-keys?status=active', { token: accessToken });
    expect(JSON.stringify(listed.body)).not.toContain(key);
    expect(JSON.stringify(listed.body)).toContain(created.body['id'] as string);
    expect(
      (await call('DELETE', `/api-keys/${created.body['id'] as string}`, { token: accessToken })).status,
    ).toBe(204);
    expect((await call('GET', '/spaces', { key })).status).toBe(401);
  });

  it('invalid input is a 400 problem listing every field; conflicts are 409', async () => {
    const { accessToken } = await login(users.ownerA.email);
    const r = await call('POST', '/sites', {
      token: accessToken,
      body: { name: '', latitude: 200, extra: 1 },
    });
    expect(r.status).toBe(400);
    const fields = (r.body['errors'] as Array<{ in: string; field: string }>).map(
      (e) => `${e.in}.${e.field}`,
    );
    expect(fields).toEqual(expect.arrayContaining(['body.name', 'body.latitude']));
    expect((await call('GET', '/spaces/not-a-uuid', { token: accessToken })).body['errors']).toEqual([
      expect.objectContaining({ in: 'path', field: 'spaceId' }),
    ]);
    expect(
      (await call('GET', '/spaces?limit=0&sort=nope', { token: accessToken })).body['errors'],
    ).toHaveLength(2);
    const dup = await call('POST', '/spaces', {
      token: accessToken,
      body: { code: a.spaceCode, name: 'dup' },
    });
    expect(dup.status).toBe(409);
  });
});

describe('lists', () => {
  it('page with a cursor, filter and sort the same way', async () => {
    const { accessToken } = await login(users.ownerA.email);
    const prefix = randomUUID().slice(0, 8);
    for (const n of [3, 1, 2])
      expect(
        (await call('POST', '/sites', { token: accessToken, body: { name: `${prefix}-${n}` } })).status,
      ).toBe(201);
    const first = await call('GET', `/sites?q=${prefix}&limit=2&sort=-name`, { token: accessToken });
    const names = (r: Call) => (r.body['data'] as Array<{ name: string }>).map((s) => s.name);
    expect(names(first)).toEqual([`${prefix}-3`, `${prefix}-2`]);
    const cursor = (first.body['page'] as { nextCursor: string }).nextCursor;
    const second = await call('GET', `/sites?q=${prefix}&limit=2&sort=-name&cursor=${cursor}`, {
      token: accessToken,
    });
    expect(names(second)).toEqual([`${prefix}-1`]);
    expect((second.body['page'] as { nextCursor: string | null }).nextCursor).toBeNull();
    expect(
      (await call('GET', `/sites?q=${prefix}&sort=name&cursor=${cursor}`, { token: accessToken })).status,
    ).toBe(400);
  });

  it('the dashboard summary counts occupancy now per site', async () => {
    const { accessToken } = await login(users.ownerB.email);
    await su.query("UPDATE spaces SET state = 'occupied' WHERE tenant_id = $1 AND id = $2", [
      b.tenantId,
      b.spaceId,
    ]);
    const r = await call('GET', '/dashboard/summary', { token: accessToken });
    expect(r.status).toBe(200);
    expect(r.body['totals']).toMatchObject({ spaces: 1, occupied: 1, occupancyRate: 1 });
    expect(r.body['sites']).toEqual([expect.objectContaining({ siteId: null, spaces: 1, occupied: 1 })]);
  });
});

describe('cross-tenant walk', () => {
  it('every route, called by tenant A with tenant B ids, answers 404 or lists nothing of B', async () => {
    const { accessToken } = await login(users.ownerA.email);
    const other = await login(users.ownerB.email);
    const bSite = await call('POST', '/sites', {
      token: other.accessToken,
      body: { name: `B ${randomUUID()}` },
    });
    const bKey = await call('POST', '/api-keys', {
      token: other.accessToken,
      body: { name: 'b', scopes: ['spaces:read'] },
    });
    const bIds: Record<string, string> = {
      siteId: bSite.body['id'] as string,
      spaceId: b.spaceId,
      keyId: bKey.body['id'] as string,
    };
    const secretsOfB = [...Object.values(bIds), b.tenantId, b.devEui];
    const bodies: Record<string, unknown> = {
      'POST /sites': { name: `walk ${randomUUID()}` },
      'PATCH /sites/{siteId}': { name: 'stolen' },
      'POST /spaces': { code: `W-${randomUUID().slice(0, 6)}`, name: 'walk', siteId: bIds['siteId'] },
      'PATCH /spaces/{spaceId}': { name: 'stolen' },
      'PUT /spaces/{spaceId}/sensor': { devEui: b.devEui },
      'PUT /spaces/{spaceId}/display': { devEui: randomDevEui() },
      'POST /api-keys': { name: 'walk', scopes: ['spaces:read'] },
    };
    const operations = v6Routes(deps()).operations.filter((op) => !op.includes('/auth/'));
    expect(operations.length).toBeGreaterThanOrEqual(18);
    for (const operation of operations) {
      const [method, fullPath] = operation.split(' ') as [string, string];
      const template = fullPath.slice(apiBase.length);
      const path = template.replace(/\{(\w+)\}/g, (_m, k: string) => bIds[k]!);
      const r = await call(method, path, { token: accessToken, body: bodies[`${method} ${template}`] });
      if (template.includes('{')) expect({ operation, status: r.status }).toEqual({ operation, status: 404 });
      else if (method === 'POST' && template === '/spaces')
        expect({ operation, status: r.status }).toEqual({ operation, status: 409 });
      else
        expect({ operation, status: r.status }).toEqual({
          operation,
          status: r.status < 300 ? r.status : 200,
        });
      // A problem's `instance` echoes the caller's own URL; everything else must be free of B's data.
      const text = JSON.stringify({ ...r.body, instance: undefined });
      for (const s of secretsOfB)
        expect({ operation, leaked: text.includes(s) }).toEqual({ operation, leaked: false });
    }
    // Nothing of B changed.
    const site = await su.query('SELECT name FROM sites WHERE tenant_id = $1 AND id = $2', [
      b.tenantId,
      bIds['siteId'],
    ]);
    expect(site.rows[0]).toMatchObject({ name: bSite.body['name'] });
    const key = await su.query('SELECT revoked_at FROM api_keys WHERE tenant_id = $1 AND id = $2', [
      b.tenantId,
      bIds['keyId'],
    ]);
    expect(key.rows[0]).toMatchObject({ revoked_at: null });
  });
});

describe('rate limits', () => {
  it('per API key: over the limit is 429 with Retry-After and RateLimit headers; another key is unaffected', async () => {
    const limits = { windowS: 60, perIp: 1_000, perUser: 1_000, perApiKey: 3 };
    const limiter = createRedisRateLimiter(redis, limits.windowS, logger, `rl:test:${randomUUID()}`);
    const limited = await listen(createApp(deps({ limiter, limits })), '127.0.0.1', 0);
    try {
      const get = (key: string) =>
        fetch(`http://127.0.0.1:${limited.port}${apiBase}/spaces`, { headers: { 'x-api-key': key } });
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await get(a.apiKey);
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(last!.headers.get('ratelimit-limit')).toBe('3');
      expect(last!.headers.get('ratelimit-remaining')).toBe('0');
      expect(last!.headers.get('content-type')).toContain('application/problem+json');
      expect((await get(b.apiKey)).status).toBe(200);
    } finally {
      await closeServer(limited.server);
    }
  });

  it('per IP, before authentication (login attempts count)', async () => {
    const limits = { windowS: 60, perIp: 2, perUser: 1_000, perApiKey: 1_000 };
    const limiter = createRedisRateLimiter(redis, limits.windowS, logger, `rl:test:${randomUUID()}`);
    const limited = await listen(createApp(deps({ limiter, limits })), '127.0.0.1', 0);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`http://127.0.0.1:${limited.port}${apiBase}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'x@example.test', password: 'wrong' }),
        });
        statuses.push(r.status);
      }
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await closeServer(limited.server);
    }
  });
});

describe('OpenAPI', () => {
  it('the served document is valid OpenAPI 3.1 and lists every mounted route; the docs page is local', async () => {
    const response = await fetch(`${base}${apiBase}/openapi.json`);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, JSON.stringify('errors' in result ? result.errors : [])).toBe(true);
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    // The routes express actually serves, read from the router, not from the list the document was made from.
    const mounted = v6Routes(deps())
      .router.stack.filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys((layer.route as unknown as { methods: Record<string, boolean> }).methods).map(
          (method) => `${method.toUpperCase()} ${apiBase}${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
        ),
      );
    expect(mounted.length).toBeGreaterThanOrEqual(20);
    expect(documented.sort()).toEqual(mounted.sort());
    const docs = await fetch(`${base}${apiBase}/docs`);
    const html = await docs.text();
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect(html).toContain('openapi.json');
    expect(html).not.toMatch(/https?:\/\//);
  });
});
