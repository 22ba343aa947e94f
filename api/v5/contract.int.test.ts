import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { closeServer, listen } from '../../lib/http/listen.js';
import { createLogger } from '../../lib/logger.js';
import { createTestTenant, randomDevEui, type TestTenant } from '../../lib/testing/fixtures.js';
import { createApp } from '../app.js';
import { hashPassword } from '../auth/passwords.js';
import { createTokenService } from '../auth/tokens.js';

/**
 * The v5 contract: every operation of ../shared/reference/v5-openapi.json is called through HTTP against the
 * real database and every response (status, content type, body) is checked against what the document declares
 * for that operation and status. An operation passes only when its scenario gets a documented 2xx and every
 * response validates.
 *
 * The gap is measured, not hidden: `notYetImplemented` lists the operations not served yet; for those the test
 * asserts that the scenario FAILS, so the list must shrink as operations land (an operation that starts working
 * while listed fails the suite, as does one that breaks while not listed). `servedElsewhere` names operations
 * another service serves, with the test that covers them there.
 */
const referencePath = new URL('../../../shared/reference/v5-openapi.json', import.meta.url);
const doc = JSON.parse(readFileSync(referencePath, 'utf8')) as OpenApiDoc;

/** Operations not served yet: each must still fail here. Remove an entry when its operation lands. */
const notYetImplemented: readonly string[] = [];

/** Served by another service; the named test covers it there. */
const servedElsewhere: Readonly<Record<string, string>> = {
  'POST /api/v1/uplink': 'ingest/webhook-v5.int.test.ts',
};

interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, ResponseObject> };
}
interface Operation {
  responses: Record<string, ResponseObject | { $ref: string }>;
}
interface ResponseObject {
  description?: string;
  content?: Record<string, { schema?: unknown }>;
}

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const;
const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  methods.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`),
);

// OpenAPI 3.0's `nullable: true` (which the v5 document uses) means "or null": rewritten into JSON Schema 2020-12.
function withNulls(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withNulls);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') out[k] = withNulls(v);
  const nullable = (node as { nullable?: unknown }).nullable === true;
  if (nullable && typeof out['type'] === 'string') out['type'] = [out['type'], 'null'];
  if (nullable && Array.isArray(out['enum'])) out['enum'] = [...(out['enum'] as unknown[]), null];
  return out;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ ...(withNulls(doc) as object), $id: 'v5' });

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
const validators = new Map<string, ValidateFunction>();
function validatorFor(ref: string): ValidateFunction {
  let v = validators.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: ref });
    validators.set(ref, v);
  }
  return v;
}

interface Exchange {
  status: number;
  contentType: string;
  body: unknown;
}

/** Checks one response against the document: a declared status, its media type, its schema. */
function conforms(operation: string, r: Exchange): void {
  const [method, path] = operation.split(' ') as [string, string];
  const op = doc.paths[path]![method.toLowerCase()]!;
  const declared = op.responses[String(r.status)] ?? op.responses['default'];
  if (!declared) {
    // v5 declares its error shape once (components.schemas.Problem) but lists few error statuses per operation:
    // an undeclared error status must still be a v5 Problem; an undeclared success status is a failure.
    if (r.status < 400) throw new Error(`${operation}: status ${r.status} is not documented`);
    if (!r.contentType.startsWith('application/problem+json'))
      throw new Error(`${operation}: ${r.status} answered ${r.contentType}, not a problem`);
    const problem = validatorFor('v5#/components/schemas/Problem');
    if (!problem(r.body) || !(r.body as { request_id?: unknown }).request_id)
      throw new Error(
        `${operation}: ${r.status} is not a v5 Problem with request_id: ${JSON.stringify(r.body)}`,
      );
    return;
  }
  const responseKey = String(op.responses[String(r.status)] ? r.status : 'default');
  let base = `v5#/${pointer('paths', path, method.toLowerCase(), 'responses', responseKey)}`;
  let response = declared as ResponseObject & { $ref?: string };
  if (response.$ref) {
    const name = response.$ref.split('/').pop()!;
    response = doc.components.responses[name]!;
    base = `v5#/${pointer('components', 'responses', name)}`;
  }
  if (!response.content || r.status === 204) return;
  const media = r.contentType.split(';')[0]!.trim();
  const declaredMedia = Object.keys(response.content);
  // A problem may be declared as application/json (v5 did so for some 4xx); both carry the same body.
  const match =
    declaredMedia.find((m) => m === media) ??
    (media === 'application/problem+json' ? declaredMedia.find((m) => m === 'application/json') : undefined);
  if (!match)
    throw new Error(`${operation}: ${r.status} answered ${media}, documented ${declaredMedia.join(', ')}`);
  if (response.content[match]!.schema === undefined) return;
  const validate = validatorFor(`${base}/${pointer('content', match, 'schema')}`);
  if (!validate(r.body))
    throw new Error(
      `${operation}: ${r.status} body does not match the document: ${ajv.errorsText(validate.errors)}\n` +
        JSON.stringify(r.body).slice(0, 600),
    );
}

// ---------------------------------------------------------------------------------------------------- setup
const config = loadConfig();
const password = 'correct horse battery staple';
let su: pg.Client;
let pool: Pool;
let server: Server;
let base: string;
let a: TestTenant;
let b: TestTenant;
let ownerA: { email: string; token: string };
let ownerB: { email: string; token: string };

async function makeOwner(tenantId: string) {
  const email = `v5-${randomUUID().slice(0, 8)}@example.test`;
  const { rows } = await su.query<{ id: string }>(
    'INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id',
    [email, 'V5 Owner', await hashPassword(password)],
  );
  await su.query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')", [
    tenantId,
    rows[0]!.id,
  ]);
  return email;
}

async function raw(
  method: string,
  path: string,
  options: { token?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Exchange> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (options.key) headers['x-api-key'] = options.key;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  let body: unknown = text;
  if (contentType.includes('json') && text) body = JSON.parse(text);
  return { status: response.status, contentType, body };
}

type Json = Record<string, unknown>;

/** A scenario calls one operation (preparing what it needs); every response it gets is checked by `conforms`. */
interface Call {
  (
    method: string,
    path: string,
    options?: { body?: unknown; token?: string; key?: string },
  ): Promise<Exchange>;
}

async function createSpace(): Promise<string> {
  const { rows } = await su.query<{ id: string }>(
    'INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $3) RETURNING id',
    [a.tenantId, `V5-${randomUUID().slice(0, 8)}`, 'v5 space'],
  );
  return rows[0]!.id;
}

async function createOrphan(): Promise<string> {
  const devEui = randomDevEui();
  await su.query('INSERT INTO orphan_devices (tenant_id, dev_eui, uplink_count) VALUES ($1, $2, 3)', [
    a.tenantId,
    devEui,
  ]);
  return devEui;
}

const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

/** One scenario per operation, keyed `METHOD /path` as in the document. */
const scenarios: Record<string, (call: Call) => Promise<number>> = {
  'GET /health': async (call) => (await call('GET', '/health')).status,
  'GET /health/ready': async (call) => (await call('GET', '/health/ready')).status,
  'GET /health/live': async (call) => (await call('GET', '/health/live')).status,
  'GET /metrics': async (call) => (await call('GET', '/metrics')).status,
  'POST /api/v1/auth/login': async (call) => {
    expect(
      (await call('POST', '/api/v1/auth/login', { body: { email: ownerA.email, password: 'wrong' } })).status,
    ).toBe(401);
    return (await call('POST', '/api/v1/auth/login', { body: { email: ownerA.email, password } })).status;
  },
  'POST /api/v1/auth/refresh': async (call) => {
    const login = await call('POST', '/api/v1/auth/login', { body: { email: ownerA.email, password } });
    const token = (login.body as Json)['refresh_token'];
    const first = await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: token } });
    // Reuse of the rotated token: 401 (and the family is revoked).
    expect((await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: token } })).status).toBe(401);
    return first.status;
  },
  'POST /api/v1/auth/register': async (call) =>
    (
      await call('POST', '/api/v1/auth/register', {
        body: { tenant_name: 'V5 Co', email: `reg-${randomUUID().slice(0, 8)}@example.test`, password },
      })
    ).status,
  'GET /api/v1/me': async (call) => (await call('GET', '/api/v1/me')).status,
  'GET /api/v1/me/limits': async (call) => (await call('GET', '/api/v1/me/limits')).status,
  'GET /api/v1/tenants/current': async (call) => (await call('GET', '/api/v1/tenants/current')).status,
  'PATCH /api/v1/tenants/current': async (call) =>
    (await call('PATCH', '/api/v1/tenants/current', { body: { settings: { v5: true } } })).status,
  'GET /api/v1/sites': async (call) => {
    await call('POST', '/api/v1/sites', { body: { name: `Site ${randomUUID().slice(0, 6)}` } });
    return (await call('GET', '/api/v1/sites?limit=1&sort=-created_at')).status;
  },
  'POST /api/v1/sites': async (call) =>
    (
      await call('POST', '/api/v1/sites', {
        body: { name: `Site ${randomUUID().slice(0, 6)}`, timezone: 'Europe/Paris' },
      })
    ).status,
  'GET /api/v1/sites/{site_id}': async (call) => {
    const site = await call('POST', '/api/v1/sites', { body: { name: `Site ${randomUUID().slice(0, 6)}` } });
    return (await call('GET', `/api/v1/sites/${String((site.body as Json)['id'])}`)).status;
  },
  'PATCH /api/v1/sites/{site_id}': async (call) => {
    const site = await call('POST', '/api/v1/sites', { body: { name: `Site ${randomUUID().slice(0, 6)}` } });
    return (
      await call('PATCH', `/api/v1/sites/${String((site.body as Json)['id'])}`, { body: { timezone: 'UTC' } })
    ).status;
  },
  'GET /api/v1/users': async (call) => (await call('GET', '/api/v1/users?sort=email')).status,
  'GET /api/v1/spaces': async (call) => {
    await createSpace();
    const page = await call('GET', '/api/v1/spaces?limit=1');
    const cursor = (page.body as Json)['next_cursor'];
    if (typeof cursor === 'string') await call('GET', `/api/v1/spaces?limit=1&cursor=${cursor}`);
    expect((await call('GET', '/api/v1/spaces?sort=nope')).status).toBe(400);
    return page.status;
  },
  'GET /api/v1/spaces/{space_id}': async (call) => {
    expect((await call('GET', `/api/v1/spaces/${randomUUID()}`)).status).toBe(404);
    return (await call('GET', `/api/v1/spaces/${await createSpace()}`)).status;
  },
  'PATCH /api/v1/spaces/{space_id}': async (call) =>
    (await call('PATCH', `/api/v1/spaces/${await createSpace()}`, { body: { floor: '2', zone: 'B' } }))
      .status,
  'DELETE /api/v1/spaces/{space_id}': async (call) => {
    const held = await createSpace();
    await call('POST', `/api/v1/spaces/${held}/assign-sensor?sensor_eui=${randomDevEui()}`);
    expect((await call('DELETE', `/api/v1/spaces/${held}`)).status).toBe(409);
    return (await call('DELETE', `/api/v1/spaces/${await createSpace()}`)).status;
  },
  'POST /api/v1/spaces/{space_id}/assign-sensor': async (call) => {
    const space = await createSpace();
    expect((await call('POST', `/api/v1/spaces/${space}/assign-sensor?sensor_eui=xyz`)).status).toBe(400);
    return (
      await call('POST', `/api/v1/spaces/${space}/assign-sensor?sensor_eui=${randomDevEui().toLowerCase()}`)
    ).status;
  },
  'POST /api/v1/spaces/{space_id}/assign-display': async (call) =>
    (await call('POST', `/api/v1/spaces/${await createSpace()}/assign-display?display_eui=${randomDevEui()}`))
      .status,
  'DELETE /api/v1/spaces/{space_id}/unassign-sensor': async (call) => {
    const space = await createSpace();
    expect((await call('DELETE', `/api/v1/spaces/${space}/unassign-sensor`)).status).toBe(404);
    await call('POST', `/api/v1/spaces/${space}/assign-sensor?sensor_eui=${randomDevEui()}`);
    return (await call('DELETE', `/api/v1/spaces/${space}/unassign-sensor`)).status;
  },
  'DELETE /api/v1/spaces/{space_id}/unassign-display': async (call) => {
    const space = await createSpace();
    await call('POST', `/api/v1/spaces/${space}/assign-display?display_eui=${randomDevEui()}`);
    return (await call('DELETE', `/api/v1/spaces/${space}/unassign-display`)).status;
  },
  'GET /api/v1/spaces/stats/summary': async (call) =>
    (await call('GET', '/api/v1/spaces/stats/summary')).status,
  'GET /api/v1/reservations': async (call) =>
    (await call('GET', '/api/v1/reservations?sort=-reserved_from')).status,
  'POST /api/v1/reservations': async (call) => {
    const body = {
      space_id: await createSpace(),
      reserved_from: inHours(1),
      reserved_until: inHours(2),
      request_id: randomUUID(),
    };
    const created = await call('POST', '/api/v1/reservations', { body });
    expect((await call('POST', '/api/v1/reservations', { body })).status).toBe(200);
    const overlapping = { ...body, request_id: randomUUID() };
    expect((await call('POST', '/api/v1/reservations', { body: overlapping })).status).toBe(409);
    return created.status;
  },
  'GET /api/v1/reservations/{reservation_id}': async (call) => {
    const body = { space_id: await createSpace(), reserved_from: inHours(1), reserved_until: inHours(2) };
    const created = await call('POST', '/api/v1/reservations', { body });
    return (await call('GET', `/api/v1/reservations/${String((created.body as Json)['id'])}`)).status;
  },
  'DELETE /api/v1/reservations/{reservation_id}': async (call) => {
    const body = { space_id: await createSpace(), reserved_from: inHours(3), reserved_until: inHours(4) };
    const created = await call('POST', '/api/v1/reservations', { body });
    return (await call('DELETE', `/api/v1/reservations/${String((created.body as Json)['id'])}`)).status;
  },
  'GET /api/v1/devices': async (call) => (await call('GET', '/api/v1/devices?sort=-created_at')).status,
  'GET /api/v1/devices/device-types': async (call) =>
    (await call('GET', '/api/v1/devices/device-types')).status,
  'GET /api/v1/devices/{deveui}': async (call) => {
    expect((await call('GET', `/api/v1/devices/${randomDevEui()}`)).status).toBe(404);
    return (await call('GET', `/api/v1/devices/${a.devEui}`)).status;
  },
  'PUT /api/v1/devices/{deveui}': async (call) =>
    (await call('PUT', `/api/v1/devices/${a.devEui}`, { body: { name: 'bay sensor' } })).status,
  'PATCH /api/v1/devices/{deveui}/archive': async (call) => {
    const space = await createSpace();
    const devEui = randomDevEui();
    await call('POST', `/api/v1/spaces/${space}/assign-display?display_eui=${devEui}`);
    return (await call('PATCH', `/api/v1/devices/${devEui}/archive`)).status;
  },
  'GET /api/v1/devices/full-metadata': async (call) =>
    (await call('GET', '/api/v1/devices/full-metadata')).status,
  'GET /api/v1/orphan-devices': async (call) => {
    await createOrphan();
    return (await call('GET', '/api/v1/orphan-devices')).status;
  },
  'POST /api/v1/orphan-devices/{device_eui}/assign': async (call) => {
    const devEui = await createOrphan();
    const space = await createSpace();
    return (await call('POST', `/api/v1/orphan-devices/${devEui}/assign`, { body: { space_id: space } }))
      .status;
  },
  'DELETE /api/v1/orphan-devices/{device_eui}': async (call) =>
    (await call('DELETE', `/api/v1/orphan-devices/${await createOrphan()}`)).status,
  'GET /api/v1/display-policies': async (call) => (await call('GET', '/api/v1/display-policies')).status,
  'POST /api/v1/display-policies': async (call) =>
    (
      await call('POST', '/api/v1/display-policies', {
        body: {
          policy_name: `P ${randomUUID().slice(0, 6)}`,
          display_codes: { free: '01', occupied: '02' },
          is_active: true,
        },
      })
    ).status,
  'GET /api/v1/display-policies/{policy_id}': async (call) => {
    const p = await call('POST', '/api/v1/display-policies', {
      body: { policy_name: `P ${randomUUID().slice(0, 6)}`, display_codes: { free: '01' } },
    });
    return (await call('GET', `/api/v1/display-policies/${String((p.body as Json)['id'])}`)).status;
  },
  'PATCH /api/v1/display-policies/{policy_id}': async (call) => {
    const p = await call('POST', '/api/v1/display-policies', {
      body: { policy_name: `P ${randomUUID().slice(0, 6)}`, display_codes: { free: '01' } },
    });
    return (
      await call('PATCH', `/api/v1/display-policies/${String((p.body as Json)['id'])}`, {
        body: { is_active: true },
      })
    ).status;
  },
  'POST /api/v1/display-policies/admin-overrides': async (call) =>
    (
      await call('POST', '/api/v1/display-policies/admin-overrides', {
        body: { space_id: await createSpace(), display_state: 'reserved', duration_minutes: 30 },
      })
    ).status,
  'DELETE /api/v1/display-policies/admin-overrides/{override_id}': async (call) => {
    const o = await call('POST', '/api/v1/display-policies/admin-overrides', {
      body: { space_id: await createSpace(), display_state: 'maintenance', expires_at: inHours(1) },
    });
    return (
      await call('DELETE', `/api/v1/display-policies/admin-overrides/${String((o.body as Json)['id'])}`)
    ).status;
  },
  'GET /api/v1/display-policies/spaces/{space_id}/computed-state': async (call) => {
    const space = await createSpace();
    await call('POST', '/api/v1/display-policies/admin-overrides', {
      body: { space_id: space, display_state: 'reserved', duration_minutes: 5 },
    });
    const r = await call('GET', `/api/v1/display-policies/spaces/${space}/computed-state`);
    expect((r.body as Json)['display_state']).toBe('reserved');
    return r.status;
  },
  'GET /api/v1/downlinks/queue/metrics': async (call) =>
    (await call('GET', '/api/v1/downlinks/queue/metrics')).status,
  'GET /api/v1/downlinks/queue/health': async (call) =>
    (await call('GET', '/api/v1/downlinks/queue/health')).status,
  'POST /api/v1/downlinks/queue/clear-metrics': async (call) =>
    (await call('POST', '/api/v1/downlinks/queue/clear-metrics')).status,
  'GET /api/v1/api-keys': async (call) => (await call('GET', '/api/v1/api-keys')).status,
  'POST /api/v1/api-keys': async (call) => {
    const created = await call('POST', '/api/v1/api-keys', {
      body: { name: 'v5 key', scopes: ['spaces:read'] },
    });
    const key = String((created.body as Json)['key']);
    expect((await call('GET', '/api/v1/spaces', { key })).status).toBe(200);
    return created.status;
  },
  'DELETE /api/v1/api-keys/{key_id}': async (call) => {
    const created = await call('POST', '/api/v1/api-keys', {
      body: { name: 'v5 key', scopes: ['spaces:read'] },
    });
    return (await call('DELETE', `/api/v1/api-keys/${String((created.body as Json)['id'])}`)).status;
  },
  'POST /api/v1/webhook-secret': async (call) => {
    const first = await call('POST', '/api/v1/webhook-secret', { token: ownerB.token });
    return first.status;
  },
  'POST /api/v1/webhook-secret/rotate': async (call) =>
    (await call('POST', '/api/v1/webhook-secret/rotate')).status,
  'GET /api/v1/gateways': async (call) => (await call('GET', '/api/v1/gateways')).status,
  'GET /api/v1/gateways/{gw_eui}': async (call) => {
    const gw = randomDevEui();
    await su.query(
      'INSERT INTO gateways (tenant_id, gw_eui, name, last_seen_at) VALUES ($1, $2, $3, now())',
      [a.tenantId, gw, 'roof'],
    );
    return (await call('GET', `/api/v1/gateways/${gw}`)).status;
  },
  'GET /api/v1/gateways/stats/summary': async (call) =>
    (await call('GET', '/api/v1/gateways/stats/summary')).status,
};

/** Runs an operation's scenario, checking every response; throws unless all conform and the last one is 2xx. */
async function attempt(operation: string): Promise<void> {
  const scenario = scenarios[operation];
  if (!scenario) throw new Error(`${operation}: no scenario`);
  const call: Call = async (method, path, options = {}) => {
    const r = await raw(method, path, {
      token: options.key ? undefined : (options.token ?? ownerA.token),
      ...options,
    });
    const route = operations.find((op) => matches(op, method, path));
    if (!route) throw new Error(`${method} ${path} is no operation of the document`);
    conforms(route, r);
    return r;
  };
  const status = await scenario(call);
  if (status < 200 || status > 299) throw new Error(`${operation}: answered ${status}`);
}

function matches(operation: string, method: string, url: string): boolean {
  const [m, path] = operation.split(' ') as [string, string];
  if (m !== method) return false;
  const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
  const pathOnly = url.split('?')[0]!;
  // The most specific template wins (/spaces/stats/summary over /spaces/{space_id}).
  return (
    pattern.test(pathOnly) &&
    !operations.some(
      (other) =>
        other !== operation &&
        other.startsWith(`${method} `) &&
        !other.includes('{') &&
        other.split(' ')[1] === pathOnly,
    )
  );
}

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  pool = createPool(config.postgres.apiUrl, 'api-v5-test', 4);
  [a, b] = await Promise.all([createTestTenant(), createTestTenant()]);
  const app = createApp({
    apiPool: pool,
    logger: createLogger('api-v5-test', 'silent'),
    tokens: createTokenService({ jwtSecret: config.apiAuth.jwtSecret, accessTokenTtlS: 300 }),
    refreshTokenTtlS: 3_600,
    limits: { windowS: 60, perIp: 100_000, perUser: 100_000, perApiKey: 100_000 },
  });
  const listening = await listen(app, '127.0.0.1', 0);
  server = listening.server;
  base = `http://127.0.0.1:${listening.port}`;
  const loginAs = async (email: string) => {
    const r = await raw('POST', '/api/v1/auth/login', { body: { email, password } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { email, token: String((r.body as Json)['access_token']) };
  };
  ownerA = await loginAs(await makeOwner(a.tenantId));
  ownerB = await loginAs(await makeOwner(b.tenantId));
});

afterAll(async () => {
  if (server) await closeServer(server);
  await pool?.end();
  await su?.end();
});

describe('v5 contract (../shared/reference/v5-openapi.json)', () => {
  it('enumerates the 57 operations, each with a scenario or served elsewhere', () => {
    expect(operations).toHaveLength(57);
    for (const op of operations) expect(op in scenarios || op in servedElsewhere, op).toBe(true);
    for (const op of notYetImplemented) expect(operations, op).toContain(op);
    for (const [op, test] of Object.entries(servedElsewhere)) {
      expect(operations).toContain(op);
      expect(existsSync(new URL(`../../${test}`, import.meta.url)), test).toBe(true);
    }
  });

  it('the checker itself rejects what breaks the document', () => {
    const ok = { status: 200, contentType: 'application/json', body: { id: randomUUID(), name: 'x' } };
    expect(() => conforms('GET /api/v1/sites/{site_id}', ok)).not.toThrow();
    expect(() => conforms('GET /api/v1/sites/{site_id}', { ...ok, body: { id: 'not-a-uuid' } })).toThrow();
    expect(() => conforms('GET /api/v1/spaces/{space_id}', { ...ok, body: { state: 'unknown' } })).toThrow();
    expect(() => conforms('GET /api/v1/sites/{site_id}', { ...ok, status: 202 })).toThrow();
    const problem = {
      status: 404,
      contentType: 'application/problem+json',
      body: { type: 'urn:x', title: 'NOT_FOUND', status: 404 },
    };
    expect(() => conforms('GET /api/v1/sites/{site_id}', problem)).toThrow();
    expect(() =>
      conforms('GET /api/v1/sites/{site_id}', { ...problem, body: { ...problem.body, request_id: 'r' } }),
    ).not.toThrow();
  });

  for (const operation of operations) {
    if (operation in servedElsewhere) continue;
    if (notYetImplemented.includes(operation))
      it(`${operation} is not implemented yet (listed; remove it from the list once it works)`, async () => {
        await expect(attempt(operation)).rejects.toThrow();
      });
    else it(`${operation} answers as documented`, () => attempt(operation));
  }

  it('answers errors as v5 problems with request_id', async () => {
    const r = await raw('GET', `/api/v1/spaces/${randomUUID()}`, {
      token: ownerA.token,
      headers: { 'x-request-id': 'v5-req-1' },
    });
    expect(r.status).toBe(404);
    expect(r.contentType).toContain('application/problem+json');
    expect(r.body).toMatchObject({ status: 404, request_id: 'v5-req-1' });
    const unknown = await raw('GET', '/api/v1/nothing-here', { token: ownerA.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toHaveProperty('request_id');
  });

  it("refuses missing credentials and another tenant's ids", async () => {
    expect((await raw('GET', '/api/v1/spaces')).status).toBe(401);
    expect((await raw('GET', `/api/v1/spaces/${a.spaceId}`, { token: ownerB.token })).status).toBe(404);
    expect((await raw('GET', `/api/v1/devices/${a.devEui}`, { token: ownerB.token })).status).toBe(404);
    expect(
      (await raw('DELETE', `/api/v1/spaces/${a.spaceId}/unassign-sensor`, { token: ownerB.token })).status,
    ).toBe(404);
    // A viewer-scoped key cannot write.
    expect((await raw('POST', '/api/v1/sites', { key: a.apiKey, body: { name: 'x' } })).status).toBe(403);
  });

  it('leaves an audit row naming the user and the request for a v5 mutation', async () => {
    const r = await raw('PATCH', `/api/v1/spaces/${a.spaceId}`, {
      token: ownerA.token,
      body: { zone: 'audited' },
      headers: { 'x-request-id': `v5-audit-${randomUUID()}` },
    });
    expect(r.status).toBe(200);
    const { rows } = await su.query<{ actor_type: string; entity: string }>(
      "SELECT actor_type, entity FROM audit_log WHERE tenant_id = $1 AND request_id LIKE 'v5-audit-%'",
      [a.tenantId],
    );
    expect(rows).toEqual([{ actor_type: 'user', entity: 'spaces' }]);
  });
});
