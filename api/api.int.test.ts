import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { validate } from '@readme/openapi-parser';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../lib/api-key.js';
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

/** A fresh API key of the tenant with these scopes. */
async function keyWith(tenantId: string, scopes: string[]): Promise<string> {
  const key = `pk_test_${randomUUID().replace(/-/g, '')}`;
  await su.query('INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [
    tenantId,
    'test',
    hashApiKey(key),
    scopes,
  ]);
  return key;
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
    const devBody = { devEui: randomDevEui(), kind: 'sensor' };
    const adminKey = await keyWith(a.tenantId, ['admin']);
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
      ['wrong role (devices)', call('POST', '/devices', { token: accessToken, body: devBody }), 403],
      ['wrong scope (devices)', call('GET', '/devices', { key: a.apiKey }), 403],
      ['wrong scope (gateways)', call('GET', '/gateways/stats', { key: a.apiKey }), 403],
      ['wrong role (reservations)', call('POST', '/reservations', { token: accessToken, body: {} }), 403],
      ['wrong scope (reservations)', call('GET', '/reservations', { key: a.apiKey }), 403],
      ['wrong role (members)', call('GET', '/members', { token: accessToken }), 403],
      ['wrong role (webhook secrets)', call('POST', '/webhook-secrets/rotate', { token: accessToken }), 403],
      ['wrong role (policies)', call('POST', '/display-policies', { token: accessToken, body: {} }), 403],
      ['wrong scope (downlinks)', call('GET', '/downlinks/jobs', { key: a.apiKey }), 403],
      ['no token (devices)', call('GET', `/devices/${a.devEui}`), 401],
      ['other tenant (device)', call('GET', `/devices/${b.devEui}`, { token: accessToken }), 404],
      ['other tenant (member)', call('GET', `/members/${users.ownerB.id}`, { key: adminKey }), 404],
      ['wrong role (invites)', call('GET', '/invites', { token: accessToken }), 403],
      ['wrong scope (invites)', call('POST', '/invites', { key: a.apiKey, body: {} }), 403],
      ['no token (invites)', call('GET', '/invites'), 401],
      ['wrong role (delete device)', call('DELETE', `/devices/${a.devEui}`, { token: accessToken }), 403],
      ['wrong scope (delete gateway)', call('DELETE', `/gateways/${a.devEui}`, { key: a.apiKey }), 403],
      ['other tenant (delete device)', call('DELETE', `/devices/${b.devEui}`, { key: adminKey }), 404],
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

describe('registration', () => {
  it('creates a tenant with the caller as owner, audited; a taken email is 409, a short password 400', async () => {
    const email = `Reg-${randomUUID().slice(0, 8)}@Example.test`;
    const requestId = `reg-${randomUUID()}`;
    const r = await call('POST', '/auth/register', {
      body: { tenantName: 'Parkhaus Süd', email, password },
      requestId,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const tenantId = r.body['tenantId'] as string;
    expect(r.body['memberships']).toEqual([expect.objectContaining({ tenantId, role: 'owner' })]);
    expect((r.body['memberships'] as Array<{ tenantSlug: string }>)[0]!.tenantSlug).toMatch(/^parkhaus-s-d-/);
    const me = await call('GET', '/members', { token: r.body['accessToken'] as string });
    expect(me.body['data']).toEqual([expect.objectContaining({ email: email.toLowerCase(), role: 'owner' })]);
    const audit = await su.query<{ entity: string; action: string; actor_type: string }>(
      'SELECT entity, action, actor_type FROM audit_log WHERE tenant_id = $1 AND request_id = $2 ORDER BY entity',
      [tenantId, requestId],
    );
    expect(audit.rows).toEqual([
      { entity: 'memberships', action: 'create', actor_type: 'user' },
      // The session the response carries.
      { entity: 'refresh_tokens', action: 'create', actor_type: 'user' },
      { entity: 'tenants', action: 'create', actor_type: 'user' },
    ]);
    const again = await call('POST', '/auth/register', { body: { tenantName: 'Other', email, password } });
    expect(again.status).toBe(409);
    const tenants = await su.query(
      "SELECT 1 FROM tenants WHERE name = 'Other' AND created_at > now() - interval '1 minute'",
    );
    expect(tenants.rowCount).toBe(0);
    const short = await call('POST', '/auth/register', {
      body: { tenantName: 'X', email: `s-${randomUUID().slice(0, 8)}@example.test`, password: 'short' },
    });
    expect(short.status).toBe(400);
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

describe('devices, gateways, reservations, displays, downlinks, webhook secrets, members', () => {
  /** Calls as tenant A's owner and checks the status and, for mutations, the one audit row. */
  async function step(
    token: string,
    method: string,
    path: string,
    status: number,
    options: { body?: unknown; audit?: [entity: string, action: string] } = {},
  ): Promise<Record<string, unknown>> {
    const requestId = `t-${randomUUID()}`;
    const r = await call(method, path, { token, body: options.body, requestId });
    expect({ method, path, status: r.status, body: r.status === status ? null : r.body }).toEqual({
      method,
      path,
      status,
      body: null,
    });
    if (options.audit) {
      const [entity, action] = options.audit;
      // Only the entity's rows: other tables' triggers (e.g. ChirpStack sync bookkeeping) may audit too.
      const rows = (await auditRows(a.tenantId, requestId)).filter((r) => r.entity === entity);
      expect(rows).toEqual([{ actor_type: 'user', actor_id: users.ownerA.id, action, entity }]);
    }
    return r.body;
  }

  it('devices: register, list by kind, update, archive; orphans adopted onto a space; the catalog', async () => {
    const { accessToken: t } = await login(users.ownerA.email);
    const sensor = randomDevEui();
    const created = await step(t, 'POST', '/devices', 201, {
      body: { devEui: sensor.toLowerCase(), kind: 'sensor' },
      audit: ['sensor_devices', 'create'],
    });
    expect(created).toMatchObject({ devEui: sensor, kind: 'sensor', status: 'active', archivedAt: null });
    await step(t, 'POST', '/devices', 409, { body: { devEui: b.devEui, kind: 'sensor' } });
    await step(t, 'PATCH', `/devices/${sensor}`, 200, {
      body: { name: 'bay 7', status: 'inactive' },
      audit: ['sensor_devices', 'update'],
    });
    const sensors = await step(t, 'GET', '/devices?kind=sensor&limit=200', 200);
    expect(
      (sensors['data'] as Array<{ devEui: string; name: string }>).find((d) => d.devEui === sensor),
    ).toMatchObject({ name: 'bay 7' });
    const archived = await step(t, 'POST', `/devices/${sensor}/archive`, 200, {
      audit: ['sensor_devices', 'update'],
    });
    expect(archived).toMatchObject({ status: 'decommissioned', spaceId: null });
    const listed = await step(t, 'GET', '/devices?limit=200', 200);
    expect(JSON.stringify(listed)).not.toContain(sensor);
    expect(JSON.stringify(await step(t, 'GET', '/devices?limit=200&includeArchived=true', 200))).toContain(
      sensor,
    );

    const orphan = randomDevEui();
    await su.query('INSERT INTO orphan_devices (tenant_id, dev_eui) VALUES ($1, $2)', [a.tenantId, orphan]);
    const space = await step(t, 'POST', '/spaces', 201, {
      body: { code: `O-${randomUUID().slice(0, 6)}`, name: 'O' },
    });
    const orphans = await step(t, 'GET', '/orphans', 200);
    expect((orphans['data'] as Array<{ devEui: string }>).map((o) => o.devEui)).toContain(orphan);
    const adopted = await step(t, 'POST', `/orphans/${orphan}/adopt`, 201, {
      body: { kind: 'display', spaceId: space['id'] },
    });
    expect(adopted).toMatchObject({ devEui: orphan, kind: 'display', spaceId: space['id'] });
    await step(t, 'POST', `/orphans/${orphan}/adopt`, 404, { body: { kind: 'display' } });
    const types = await step(t, 'GET', '/device-types', 200);
    expect(Array.isArray(types['data'])).toBe(true);
  });

  it('devices and gateways: deleting removes them, audited, and marks them for deletion from ChirpStack', async () => {
    const { accessToken: t } = await login(users.ownerA.email);
    const syncItem = async (kind: string, eui: string) =>
      (
        await su.query<{ status: string; version: string }>(
          'SELECT status, version FROM chirpstack_sync_items WHERE tenant_id = $1 AND kind = $2 AND eui = $3',
          [a.tenantId, kind, eui],
        )
      ).rows[0];
    const sensor = randomDevEui();
    await step(t, 'POST', '/devices', 201, { body: { devEui: sensor, kind: 'sensor' } });
    await su.query(
      "UPDATE chirpstack_sync_items SET status = 'synced', in_chirpstack = true WHERE tenant_id = $1 AND eui = $2",
      [a.tenantId, sensor],
    );
    await step(t, 'DELETE', `/devices/${sensor.toLowerCase()}`, 204, { audit: ['sensor_devices', 'delete'] });
    await step(t, 'GET', `/devices/${sensor}`, 404);
    await step(t, 'DELETE', `/devices/${sensor}`, 404);
    expect(await syncItem('device', sensor)).toEqual({ status: 'pending', version: '2' });

    const gateway = randomDevEui();
    await su.query("INSERT INTO gateways (tenant_id, gw_eui, name) VALUES ($1, $2, 'gone')", [
      a.tenantId,
      gateway,
    ]);
    await step(t, 'DELETE', `/gateways/${gateway}`, 204, { audit: ['gateways', 'delete'] });
    await step(t, 'DELETE', `/gateways/${gateway}`, 404);
    expect(await syncItem('gateway', gateway)).toEqual({ status: 'pending', version: '2' });

    // A display that downlinks were queued for keeps its history: 409, archive it instead.
    const display = randomDevEui();
    await step(t, 'POST', '/devices', 201, { body: { devEui: display, kind: 'display' } });
    await su.query(
      `INSERT INTO downlink_jobs (tenant_id, dev_eui, f_port, payload, reason, dedupe_key)
       VALUES ($1, $2, 10, '\\x01', 'manual', $3)`,
      [a.tenantId, display, `del-${randomUUID()}`],
    );
    await step(t, 'DELETE', `/devices/${display}`, 409);
  });

  it('gateways: online status and stats', async () => {
    const tenant = await createTestTenant();
    const { accessToken: t } = await login((await makeUser('gw', [[tenant.tenantId, 'viewer']])).email);
    const [online, offline] = [randomDevEui(), randomDevEui()];
    await su.query(
      `INSERT INTO gateways (tenant_id, gw_eui, name, last_seen_at)
       VALUES ($1, $2, 'on', now()), ($1, $3, 'off', now() - interval '1 day')`,
      [tenant.tenantId, online, offline],
    );
    const r = await call('GET', '/gateways?online=true', { token: t });
    expect((r.body['data'] as Array<{ gwEui: string }>).map((g) => g.gwEui)).toEqual([online]);
    expect((await call('GET', `/gateways/${offline.toLowerCase()}`, { token: t })).body).toMatchObject({
      gwEui: offline,
      online: false,
    });
    const stats = await call('GET', '/gateways/stats', { token: t });
    expect(stats.body).toMatchObject({ total: 2, online: 1, offline: 1 });
  });

  it('reservations: idempotent by request id, overlap 409, at most 24 hours, cancel', async () => {
    const { accessToken: t } = await login(users.ownerA.email);
    const at = (h: number) =>
      new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + h * 3_600_000).toISOString();
    const requestId = `res-${randomUUID()}`;
    const body = { spaceId: a.spaceId, startsAt: at(100), endsAt: at(102), requestId };
    const first = await step(t, 'POST', '/reservations', 201, { body, audit: ['reservations', 'create'] });
    const replay = await step(t, 'POST', '/reservations', 200, { body });
    expect(replay['id']).toBe(first['id']);
    await step(t, 'POST', '/reservations', 409, { body: { ...body, endsAt: at(103) } });
    await step(t, 'POST', '/reservations', 409, {
      body: { ...body, startsAt: at(101), endsAt: at(103), requestId: `res-${randomUUID()}` },
    });
    const tooLong = await call('POST', '/reservations', {
      token: t,
      body: { ...body, startsAt: at(200), endsAt: at(225), requestId: `res-${randomUUID()}` },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body['errors']).toEqual([expect.objectContaining({ field: 'endsAt' })]);
    // Without a request id (body or header) a retry could not be recognised: refused.
    const unkeyed = await call('POST', '/reservations', {
      token: t,
      body: { spaceId: a.spaceId, startsAt: at(300), endsAt: at(301) },
    });
    expect(unkeyed.status).toBe(400);
    const headerKey = `res-${randomUUID()}`;
    const viaHeader = await call('POST', '/reservations', {
      token: t,
      requestId: headerKey,
      body: { spaceId: a.spaceId, startsAt: at(300), endsAt: at(301) },
    });
    expect(viaHeader.body).toMatchObject({ status: 'confirmed', requestId: headerKey });
    const cancelled = await step(t, 'POST', `/reservations/${first['id'] as string}/cancel`, 200, {
      audit: ['reservations', 'update'],
    });
    expect(cancelled['status']).toBe('cancelled');
    await step(t, 'POST', `/reservations/${first['id'] as string}/cancel`, 200);
    const list = await step(t, 'GET', `/reservations?spaceId=${a.spaceId}&status=cancelled`, 200);
    expect((list['data'] as Array<{ id: string }>).map((r) => r.id)).toContain(first['id']);
  });

  it('display policies (one active) and overrides change what the display must show', async () => {
    const { accessToken: t } = await login(users.ownerA.email);
    const p1 = await step(t, 'POST', '/display-policies', 201, {
      body: { name: 'p1', displayCodes: { free: 1 } },
      audit: ['display_policies', 'create'],
    });
    await step(t, 'PATCH', `/display-policies/${p1['id'] as string}`, 200, { body: { active: true } });
    const p2 = await step(t, 'POST', '/display-policies', 201, {
      body: { name: 'p2', displayCodes: { free: 2 } },
    });
    await step(t, 'PATCH', `/display-policies/${p2['id'] as string}`, 200, { body: { active: true } });
    expect(await step(t, 'GET', `/display-policies/${p1['id'] as string}`, 200)).toMatchObject({
      active: false,
    });
    const override = await step(t, 'POST', '/display-overrides', 201, {
      body: {
        spaceId: a.spaceId,
        state: 'maintenance',
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
      audit: ['display_overrides', 'create'],
    });
    const shown = await step(t, 'GET', `/spaces/${a.spaceId}/display-state`, 200);
    expect(shown).toMatchObject({ overrideId: override['id'], activePolicyId: p2['id'] });
    const overrides = await step(t, 'GET', `/display-overrides?spaceId=${a.spaceId}`, 200);
    expect((overrides['data'] as Array<{ id: string }>).map((o) => o.id)).toEqual([override['id']]);
    await step(t, 'DELETE', `/display-overrides/${override['id'] as string}`, 204, {
      audit: ['display_overrides', 'update'],
    });
    await step(t, 'DELETE', `/display-overrides/${override['id'] as string}`, 404);
  });

  it('downlink queue: jobs, metrics, reset, health', async () => {
    const { accessToken: t } = await login(users.ownerB.email);
    const display = randomDevEui();
    await su.query('INSERT INTO display_devices (tenant_id, dev_eui) VALUES ($1, $2)', [b.tenantId, display]);
    await su.query(
      `INSERT INTO downlink_jobs (tenant_id, dev_eui, f_port, payload, reason, dedupe_key, not_before)
       VALUES ($1, $2, 10, '\\x01', 'manual', $3, now() - interval '1 hour')`,
      [b.tenantId, display, randomUUID()],
    );
    const jobs = await call('GET', `/downlinks/jobs?devEui=${display}`, { token: t });
    expect(jobs.body['data']).toEqual([expect.objectContaining({ devEui: display, status: 'queued' })]);
    const id = (jobs.body['data'] as Array<{ id: string }>)[0]!.id;
    expect((await call('GET', `/downlinks/jobs/${id}`, { token: t })).status).toBe(200);
    const metrics = await call('GET', '/downlinks/metrics', { token: t });
    expect(metrics.body).toMatchObject({ jobs: expect.objectContaining({ queued: 1 }) as unknown });
    const health = await call('GET', '/downlinks/health', { token: t });
    expect(health.status).toBe(503);
    expect(health.body['healthy']).toBe(false);
    const reset = await call('POST', '/downlinks/metrics/reset', { token: t });
    expect(reset.status).toBe(200);
  });

  it('webhook secrets: shown once on create and rotate, never listed; the previous one expires later', async () => {
    const { accessToken: t } = await login(users.ownerA.email);
    await su.query('DELETE FROM webhook_secrets WHERE tenant_id = $1', [a.tenantId]);
    const created = await step(t, 'POST', '/webhook-secrets', 201, { audit: ['webhook_secrets', 'create'] });
    expect(created['secret']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await step(t, 'POST', '/webhook-secrets', 409);
    const rotated = await step(t, 'POST', '/webhook-secrets/rotate', 201);
    expect(rotated['secret']).not.toBe(created['secret']);
    const listed = await step(t, 'GET', '/webhook-secrets', 200);
    const text = JSON.stringify(listed);
    expect(text).not.toContain(created['secret'] as string);
    expect(text).not.toContain(rotated['secret'] as string);
    expect(listed['data']).toEqual([
      expect.objectContaining({ id: rotated['id'], status: 'current' }),
      expect.objectContaining({
        id: created['id'],
        status: 'previous',
        expiresAt: expect.any(String) as unknown,
      }),
    ]);
  });

  it('members: admins add and change members, only owners touch owners, the last owner stays', async () => {
    const tenant = await createTestTenant();
    const owner = await makeUser('m-owner', [[tenant.tenantId, 'owner']]);
    const adminUser = await makeUser('m-admin', [[tenant.tenantId, 'admin']]);
    const outsider = await makeUser('m-outsider', []);
    const asOwner = (await login(owner.email)).accessToken;
    const asAdmin = (await login(adminUser.email)).accessToken;
    const added = await call('POST', '/members', {
      token: asAdmin,
      body: { email: outsider.email.toUpperCase(), role: 'viewer' },
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ id: outsider.id, role: 'viewer' });
    expect(
      (await call('POST', '/members', { token: asAdmin, body: { email: outsider.email, role: 'viewer' } }))
        .status,
    ).toBe(409);
    expect(
      (await call('PATCH', `/members/${outsider.id}`, { token: asAdmin, body: { role: 'owner' } })).status,
    ).toBe(403);
    expect((await call('DELETE', `/members/${owner.id}`, { token: asAdmin })).status).toBe(403);
    expect(
      (await call('PATCH', `/members/${owner.id}`, { token: asOwner, body: { role: 'admin' } })).status,
    ).toBe(409);
    expect((await call('DELETE', `/members/${owner.id}`, { token: asOwner })).status).toBe(409);
    expect(
      (await call('PATCH', `/members/${outsider.id}`, { token: asAdmin, body: { role: 'operator' } })).body,
    ).toMatchObject({
      role: 'operator',
    });
    const members = await call('GET', '/members?sort=email', { token: asOwner });
    expect((members.body['data'] as Array<{ id: string }>).map((m) => m.id).sort()).toEqual(
      [owner.id, adminUser.id, outsider.id].sort(),
    );
    expect((await call('DELETE', `/members/${outsider.id}`, { token: asAdmin })).status).toBe(204);
    expect((await call('GET', `/members/${outsider.id}`, { token: asAdmin })).status).toBe(404);
    const renamed = await call('PATCH', '/tenant', { token: asAdmin, body: { name: 'Renamed' } });
    expect(renamed.body).toMatchObject({ id: tenant.tenantId, name: 'Renamed' });
    expect((await call('GET', '/tenant/usage', { token: asAdmin })).body).toMatchObject({ spaces: 1 });
  });
});

describe('invites', () => {
  const accept = (body: Record<string, unknown>, token?: string) =>
    call('POST', '/auth/invites/accept', { body, ...(token ? { token } : {}) });

  it('an admin invites an email with a role; a new user accepts once with a password, audited as itself', async () => {
    const tenant = await createTestTenant();
    const owner = await makeUser('i-owner', [[tenant.tenantId, 'owner']]);
    const adminUser = await makeUser('i-admin', [[tenant.tenantId, 'admin']]);
    const asAdmin = (await login(adminUser.email)).accessToken;
    const asOwner = (await login(owner.email)).accessToken;
    const email = `newbie-${randomUUID().slice(0, 8)}@example.test`;
    const requestId = `inv-${randomUUID()}`;
    const created = await call('POST', '/invites', {
      token: asAdmin,
      body: { email: email.toUpperCase(), role: 'operator' },
      requestId,
    });
    expect(created.status).toBe(201);
    const token = created.body['token'] as string;
    expect(token.startsWith(`inv_${tenant.tenantId}_`)).toBe(true);
    expect(created.body['invite']).toMatchObject({
      email,
      role: 'operator',
      status: 'pending',
      invitedBy: adminUser.id,
      acceptedAt: null,
    });
    expect(await auditRows(tenant.tenantId, requestId)).toEqual([
      { actor_type: 'user', actor_id: adminUser.id, action: 'create', entity: 'member_invites' },
    ]);
    expect(
      (await call('POST', '/invites', { token: asAdmin, body: { email: 'x@example.test', role: 'owner' } }))
        .status,
    ).toBe(403);
    expect(
      (await call('POST', '/invites', { token: asOwner, body: { email: 'x@example.test', role: 'owner' } }))
        .status,
    ).toBe(201);
    expect(
      (await call('POST', '/invites', { token: asOwner, body: { email: adminUser.email, role: 'viewer' } }))
        .status,
    ).toBe(409);
    const listed = await call('GET', '/invites?status=pending&sort=email', { token: asAdmin });
    expect((listed.body['data'] as Array<{ email: string }>).map((i) => i.email)).toEqual([
      email,
      'x@example.test',
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(token);

    const noPassword = await accept({ token });
    expect(noPassword.status).toBe(400);
    const acceptId = `acc-${randomUUID()}`;
    const accepted = await call('POST', '/auth/invites/accept', {
      body: { token, password, name: 'Newbie' },
      requestId: acceptId,
    });
    expect(accepted.status).toBe(201);
    expect(accepted.body).toMatchObject({ tenantId: tenant.tenantId, role: 'operator', userCreated: true });
    const newUser = accepted.body['userId'] as string;
    const audited = (await auditRows(tenant.tenantId, acceptId)).map((r) => [r.actor_id, r.action, r.entity]);
    expect(audited.sort()).toEqual(
      [
        [newUser, 'create', 'memberships'],
        [newUser, 'update', 'member_invites'],
      ].sort(),
    );
    const session = await login(email, tenant.tenantId);
    expect(session.tenantId).toBe(tenant.tenantId);
    const me = await call('GET', '/me', { token: session.accessToken });
    expect(me.body).toMatchObject({ kind: 'member', userId: newUser, role: 'operator' });
    expect((await accept({ token, password })).status).toBe(409);
    const after = await call('GET', '/invites?status=accepted', { token: asAdmin });
    expect(after.body['data']).toMatchObject([{ email, status: 'accepted', acceptedBy: newUser }]);
  });

  it('an existing user accepts logged in; without a token its email is 409, another user is 403', async () => {
    const tenant = await createTestTenant();
    const adminUser = await makeUser('i-admin2', [[tenant.tenantId, 'admin']]);
    const joiner = await makeUser('i-joiner', [[a.tenantId, 'viewer']]);
    const asAdmin = (await login(adminUser.email)).accessToken;
    const invite = async (email: string) =>
      (await call('POST', '/invites', { token: asAdmin, body: { email, role: 'viewer' } })).body[
        'token'
      ] as string;
    const token = await invite(joiner.email);
    expect((await accept({ token, password })).status).toBe(409);
    const other = (await login(users.ownerA.email)).accessToken;
    expect((await accept({ token }, other)).status).toBe(403);
    expect((await accept({ token }, 'not.a.jwt')).status).toBe(401);
    const asJoiner = (await login(joiner.email)).accessToken;
    // Not a member yet: the tenant is refused.
    expect((await call('GET', '/tenant', { token: asJoiner, tenant: tenant.tenantId })).status).toBe(403);
    const accepted = await accept({ token }, asJoiner);
    expect(accepted.status).toBe(201);
    expect(accepted.body).toMatchObject({ userId: joiner.id, role: 'viewer', userCreated: false });
    // The same access token now acts in the new tenant: memberships are read on every request.
    const inTenant = await call('GET', '/tenant', { token: asJoiner, tenant: tenant.tenantId });
    expect(inTenant.body).toMatchObject({ id: tenant.tenantId });
    expect((await accept({ token }, asJoiner)).status).toBe(409);
  });

  it('revoked, replaced, expired, unknown and malformed tokens are refused; revoking twice is harmless', async () => {
    const tenant = await createTestTenant();
    const adminUser = await makeUser('i-admin3', [[tenant.tenantId, 'admin']]);
    const asAdmin = (await login(adminUser.email)).accessToken;
    const email = `r-${randomUUID().slice(0, 8)}@example.test`;
    const first = await call('POST', '/invites', { token: asAdmin, body: { email, role: 'viewer' } });
    const second = await call('POST', '/invites', { token: asAdmin, body: { email, role: 'admin' } });
    expect((await accept({ token: first.body['token'], password })).status).toBe(409);
    const secondId = (second.body['invite'] as { id: string }).id;
    expect((await call('DELETE', `/invites/${secondId}`, { token: asAdmin })).status).toBe(204);
    expect((await call('DELETE', `/invites/${secondId}`, { token: asAdmin })).status).toBe(204);
    expect((await accept({ token: second.body['token'], password })).status).toBe(409);
    const revoked = await call('GET', '/invites?status=revoked', { token: asAdmin });
    expect((revoked.body['data'] as Array<{ id: string }>).map((i) => i.id).sort()).toEqual(
      [(first.body['invite'] as { id: string }).id, secondId].sort(),
    );
    const late = await call('POST', '/invites', {
      token: asAdmin,
      body: { email: `late-${randomUUID().slice(0, 8)}@example.test`, role: 'viewer', expiresInHours: 1 },
    });
    await su.query(
      `UPDATE member_invites SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'
        WHERE tenant_id = $1 AND id = $2`,
      [tenant.tenantId, (late.body['invite'] as { id: string }).id],
    );
    expect((await accept({ token: late.body['token'], password })).status).toBe(409);
    expect((await call('GET', '/invites?status=expired', { token: asAdmin })).body['data']).toMatchObject([
      { id: (late.body['invite'] as { id: string }).id, status: 'expired' },
    ]);
    const unknown = `inv_${tenant.tenantId}_${'A'.repeat(43)}`;
    expect((await accept({ token: unknown, password })).status).toBe(404);
    expect((await accept({ token: 'nope', password })).status).toBe(404);
    const memberCount = await su.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM memberships WHERE tenant_id = $1',
      [tenant.tenantId],
    );
    expect(memberCount.rows[0]!.n).toBe(1);
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
    const before = await call('GET', '/dashboard/summary', { token: accessToken });
    expect(before.status).toBe(200);
    expect(before.body['totals']).toMatchObject({ spaces: 1, occupied: 1, occupancyRate: 1 });
    expect(before.body['sites']).toEqual([expect.objectContaining({ siteId: null, spaces: 1, occupied: 1 })]);

    // Device and gateway health: what B has so far, then two sensors heard (one now silent with an open alert),
    // a decommissioned one (not counted), a gateway online and one silent, an alert already cleared, and the
    // same in tenant A (never counted for B).
    const [heard, silent, retired, gwOnline, gwSilent] = [1, 2, 3, 4, 5].map(() => randomDevEui());
    for (const [tenantId, suffix] of [
      [a.tenantId, 'a'],
      [b.tenantId, 'b'],
    ] as const) {
      const eui = (id: string) => (suffix === 'b' ? id : randomDevEui());
      await su.query(
        `INSERT INTO sensor_devices (tenant_id, dev_eui, codec, status, last_seen_at) VALUES
           ($1, $2, 'browan-tbms100', 'active', now() - interval '1 hour'),
           ($1, $3, 'browan-tbms100', 'active', now() - interval '2 days'),
           ($1, $4, 'browan-tbms100', 'decommissioned', now())`,
        [tenantId, eui(heard!), eui(silent!), eui(retired!)],
      );
      await su.query(
        `INSERT INTO gateways (tenant_id, gw_eui, name, last_seen_at) VALUES
           ($1, $2, 'online', now() - interval '1 minute'), ($1, $3, 'silent', now() - interval '1 hour')`,
        [tenantId, eui(gwOnline!), eui(gwSilent!)],
      );
      await su.query(
        `INSERT INTO liveness_alerts (tenant_id, alert_id, kind, entity_id, raised_at, last_heard_at, cleared_at,
                                      clear_event_id)
         VALUES ($1, gen_random_uuid(), 'device', $2, now() + interval '2 minutes', now() - interval '2 days', NULL, NULL),
                ($1, gen_random_uuid(), 'gateway', $3, now() + interval '1 minute', now() - interval '1 hour', NULL, NULL),
                ($1, gen_random_uuid(), 'device', $4, now(), now() - interval '3 hours', now(), gen_random_uuid())`,
        [tenantId, eui(silent!), eui(gwSilent!), eui(heard!)],
      );
    }
    const r = await call('GET', '/dashboard/summary', { token: accessToken });
    expect(r.status).toBe(200);
    type Health = Record<'sensors' | 'displays' | 'gateways', Record<string, number>>;
    const was = before.body['health'] as Health;
    const now = r.body['health'] as Health;
    expect(now.sensors).toEqual({
      total: was.sensors['total']! + 2,
      active: was.sensors['active']! + 2,
      heard24h: was.sensors['heard24h']! + 1,
      silent: was.sensors['silent']! + 1,
    });
    expect(now.displays).toEqual(was.displays);
    expect(now.gateways).toEqual({
      total: was.gateways['total']! + 2,
      online: was.gateways['online']! + 1,
      silent: was.gateways['silent']! + 1,
    });
    const alerts = r.body['alerts'] as { open: number; latest: Array<Record<string, string>> };
    expect(alerts.open).toBe((before.body['alerts'] as { open: number }).open + 2);
    expect(alerts.latest.slice(0, 2).map((x) => [x['kind'], x['entityId']])).toEqual([
      ['device', silent],
      ['gateway', gwSilent],
    ]);
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
    const bGateway = randomDevEui();
    const bDisplay = randomDevEui();
    await su.query('INSERT INTO gateways (tenant_id, gw_eui, name) VALUES ($1, $2, $3)', [
      b.tenantId,
      bGateway,
      'B gateway',
    ]);
    await su.query('INSERT INTO display_devices (tenant_id, dev_eui) VALUES ($1, $2)', [
      b.tenantId,
      bDisplay,
    ]);
    const one = async (sql: string, params: unknown[]) =>
      (await su.query<{ id: string }>(sql, params)).rows[0]!.id;
    const bIds: Record<string, string> = {
      siteId: bSite.body['id'] as string,
      spaceId: b.spaceId,
      keyId: bKey.body['id'] as string,
      devEui: b.devEui,
      gwEui: bGateway,
      userId: users.ownerB.id,
      reservationId: await one(
        `INSERT INTO reservations (tenant_id, space_id, during, status, request_id)
         VALUES ($1, $2, tstzrange(now() + interval '1 day', now() + interval '25 hours'), 'confirmed', $3)
         RETURNING id`,
        [b.tenantId, b.spaceId, `walk-${randomUUID()}`],
      ),
      policyId: await one(
        `INSERT INTO display_policies (tenant_id, name, display_codes) VALUES ($1, 'B policy', '{}') RETURNING id`,
        [b.tenantId],
      ),
      overrideId: await one(
        `INSERT INTO display_overrides (tenant_id, space_id, display_state, expires_at)
         VALUES ($1, $2, 'maintenance', now() + interval '1 hour') RETURNING id`,
        [b.tenantId, b.spaceId],
      ),
      inviteId: await one(
        `INSERT INTO member_invites (tenant_id, email, role, token_hash, expires_at)
         VALUES ($1, $2, 'admin', $3, now() + interval '1 day') RETURNING id`,
        [b.tenantId, `walk-${randomUUID().slice(0, 8)}@example.test`, randomBytes(32)],
      ),
      jobId: await one(
        `INSERT INTO downlink_jobs (tenant_id, dev_eui, f_port, payload, reason, dedupe_key)
         VALUES ($1, $2, 10, '\\x01', 'manual', $3) RETURNING id`,
        [b.tenantId, bDisplay, `walk-${randomUUID()}`],
      ),
    };
    const secretsOfB = [...Object.values(bIds), b.tenantId, bDisplay, users.ownerB.email];
    const later = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
    const bodies: Record<string, unknown> = {
      'POST /sites': { name: `walk ${randomUUID()}` },
      'PATCH /sites/{siteId}': { name: 'stolen' },
      'POST /spaces': { code: `W-${randomUUID().slice(0, 6)}`, name: 'walk', siteId: bIds['siteId'] },
      'PATCH /spaces/{spaceId}': { name: 'stolen' },
      'PUT /spaces/{spaceId}/sensor': { devEui: b.devEui },
      'PUT /spaces/{spaceId}/display': { devEui: randomDevEui() },
      'POST /api-keys': { name: 'walk', scopes: ['spaces:read'] },
      'PATCH /tenant': { name: 'Tenant A' },
      'POST /members': { email: `nobody-${randomUUID().slice(0, 8)}@example.test`, role: 'viewer' },
      'POST /invites': { email: `walk-${randomUUID().slice(0, 8)}@example.test`, role: 'viewer' },
      'PATCH /members/{userId}': { role: 'viewer' },
      'POST /devices': { devEui: randomDevEui(), kind: 'sensor' },
      'PATCH /devices/{devEui}': { name: 'stolen' },
      'POST /orphans/{devEui}/adopt': { kind: 'sensor' },
      'POST /reservations': {
        spaceId: b.spaceId,
        startsAt: later(48),
        endsAt: later(49),
        requestId: `walk-${randomUUID()}`,
      },
      'POST /display-policies': { name: 'walk', displayCodes: {} },
      'PATCH /display-policies/{policyId}': { name: 'stolen', active: true },
      'POST /display-overrides': { spaceId: b.spaceId, state: 'off', expiresAt: later(1) },
    };
    // Routes without B ids in the path whose body names B's resources: refused as B's ids are, not served.
    const expected: Record<string, number[]> = {
      'POST /spaces': [409],
      'POST /reservations': [404],
      'POST /display-overrides': [404],
      'POST /members': [404],
      // A may already have one from another test; either answer is fine, neither touches B.
      'POST /webhook-secrets': [201, 409],
    };
    const operations = v6Routes(deps()).operations.filter((op) => !op.includes('/auth/'));
    expect(operations.length).toBeGreaterThanOrEqual(50);
    for (const operation of operations) {
      const [method, fullPath] = operation.split(' ') as [string, string];
      const template = fullPath.slice(apiBase.length);
      const key = `${method} ${template}`;
      const path = template.replace(/\{(\w+)\}/g, (_m, k: string) => {
        // A new route with a new path parameter must name a B id here, or the walk would not cover it.
        expect(bIds, `${operation}: no B id for {${k}}`).toHaveProperty(k);
        return bIds[k]!;
      });
      const r = await call(method, path, { token: accessToken, body: bodies[key] });
      const allowed = expected[key] ?? (template.includes('{') ? [404] : [r.status < 300 ? r.status : 200]);
      expect({ operation, status: r.status, ok: allowed.includes(r.status) }).toEqual({
        operation,
        status: r.status,
        ok: true,
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
    const invite = await su.query(
      'SELECT revoked_at, accepted_at FROM member_invites WHERE tenant_id = $1 AND id = $2',
      [b.tenantId, bIds['inviteId']],
    );
    expect(invite.rows[0]).toEqual({ revoked_at: null, accepted_at: null });
    const untouched = await su.query<{ r: string; p: string; o: string | null; g: string; m: string }>(
      `SELECT (SELECT status FROM reservations WHERE tenant_id = $1 AND id = $2) AS r,
              (SELECT name FROM display_policies WHERE tenant_id = $1 AND id = $3) AS p,
              (SELECT cleared_at::text FROM display_overrides WHERE tenant_id = $1 AND id = $4) AS o,
              (SELECT name FROM gateways WHERE tenant_id = $1 AND gw_eui = $5) AS g,
              (SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $6) AS m`,
      [b.tenantId, bIds['reservationId'], bIds['policyId'], bIds['overrideId'], bGateway, users.ownerB.id],
    );
    expect(untouched.rows[0]).toEqual({ r: 'confirmed', p: 'B policy', o: null, g: 'B gateway', m: 'owner' });
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

  it('per IP with credentials: one Redis round trip with the caller; over the address limit 429 even with a bad key', async () => {
    const limits = { windowS: 60, perIp: 3, perUser: 1_000, perApiKey: 1_000 };
    const redisLimiter = createRedisRateLimiter(redis, limits.windowS, logger, `rl:test:${randomUUID()}`);
    const trips: number[] = [];
    const limiter = {
      hit: redisLimiter.hit,
      hitAll: (hits: Parameters<typeof redisLimiter.hitAll>[0]) => {
        trips.push(hits.length);
        return redisLimiter.hitAll(hits);
      },
    };
    const limited = await listen(createApp(deps({ limiter, limits })), '127.0.0.1', 0);
    try {
      const get = (key: string) =>
        fetch(`http://127.0.0.1:${limited.port}${apiBase}/spaces`, { headers: { 'x-api-key': key } });
      const first = await get(a.apiKey);
      expect(first.status).toBe(200);
      // The caller's own headers: the key's limit.
      expect(first.headers.get('ratelimit-limit')).toBe('1000');
      expect((await get(a.apiKey)).status).toBe(200);
      expect((await get('pk_test_unknown')).status).toBe(401);
      expect(trips).toEqual([2, 2, 1]);
      const over = await get(a.apiKey);
      expect(over.status).toBe(429);
      expect(over.headers.get('ratelimit-limit')).toBe('3');
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await get('pk_test_unknown')).status).toBe(429);
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

describe('operability', () => {
  it("/me/limits shows the caller's window; /metrics has latency by route and status; each request is logged with its id", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const capture = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as never) },
    );
    const limits = { windowS: 60, perIp: 1_000, perUser: 10, perApiKey: 1_000 };
    const limiter = createRedisRateLimiter(redis, limits.windowS, logger, `rl:test:${randomUUID()}`);
    const app = await listen(createApp(deps({ limiter, limits, logger: capture })), '127.0.0.1', 0);
    try {
      const root = `http://127.0.0.1:${app.port}`;
      const { accessToken } = await login(users.viewerA.email);
      const get = (path: string, requestId?: string) =>
        fetch(`${root}${path}`, {
          headers: {
            authorization: `Bearer ${accessToken}`,
            ...(requestId ? { 'x-request-id': requestId } : {}),
          },
        });
      const first = (await (await get(`${apiBase}/me/limits`)).json()) as { current: { remaining: number } };
      const second = (await (await get(`${apiBase}/me/limits`)).json()) as Record<string, unknown>;
      expect(second).toMatchObject({ windowS: 60, perUser: 10, current: { bucket: 'user', limit: 10 } });
      expect((second['current'] as { remaining: number }).remaining).toBe(first.current.remaining - 1);
      const v5 = (await (await get('/api/v1/me/limits')).json()) as { rate_limits: { current: unknown } };
      expect(v5.rate_limits.current).toMatchObject({ bucket: 'user', limit: 10, window_seconds: 60 });
      const requestId = `obs-${randomUUID()}`;
      expect((await get(`${apiBase}/spaces/${b.spaceId}`, requestId)).status).toBe(404);
      const metrics = await (await fetch(`${root}/metrics`)).text();
      expect(metrics).toMatch(
        /http_request_duration_seconds_count\{method="GET",route="\/api\/v6\/me\/limits",status="200"\} 2/,
      );
      expect(metrics).toContain('route="/api/v6/spaces/:spaceId",status="404"');
      expect(metrics).toContain('route="/api/v1/me/limits",status="200"');
      const logged = lines.find((l) => l['requestId'] === requestId);
      expect(logged).toMatchObject({
        msg: 'request',
        method: 'GET',
        route: '/api/v6/spaces/:spaceId',
        status: 404,
      });
      expect(typeof logged?.['durationMs']).toBe('number');
    } finally {
      await closeServer(app.server);
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
