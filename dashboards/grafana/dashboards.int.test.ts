import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/config.js';
import { connectAnalyst, type AnalystConnection } from '../../lib/testing/analyst.js';
import { randomDevEui } from '../../lib/testing/fixtures.js';
import { expandGrafanaSql } from './macros.js';

/**
 * The provisioned Grafana dashboards against the real warehouse: every panel's SQL (and the site variable's) runs
 * as a tenant's analyst login, the way Grafana's datasource would, over seeded rows of two tenants with the same
 * site names. Each panel must return exactly the expected rows of its own tenant; a panel added without an
 * expectation here fails the test.
 */
interface Target {
  rawSql: string;
  format: string;
  datasource: { uid: string };
}
interface Panel {
  title: string;
  datasource: { uid: string };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; query: string; datasource: { uid: string } }> };
}

const dir = 'dashboards/grafana/dashboards';
const dashboards = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as Dashboard);
const datasources = (
  parse(readFileSync('dashboards/grafana/provisioning/datasources/parking.yaml', 'utf8')) as {
    datasources: Array<{ uid: string; type: string; jsonData: { database: string } }>;
  }
).datasources;

const config = loadConfig();
const H = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
let su: pg.Client;
let connection: AnalystConnection;
let analyst: pg.Client;
const ids = {
  a: randomUUID(),
  b: randomUUID(),
  aNorth: randomUUID(),
  aSouth: randomUUID(),
  bNorth: randomUUID(),
};
const run = randomUUID().slice(0, 8);
const devA = randomDevEui();
const devB = randomDevEui();

async function seedTenant(
  tenantId: string,
  sites: Array<{ id: string; name: string; states: string[] }>,
): Promise<string[]> {
  await su.query('INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)', [
    tenantId,
    `grafana-${run}-${tenantId.slice(0, 4)}`,
  ]);
  const spaceIds: string[] = [];
  for (const site of sites) {
    await su.query('INSERT INTO sites (tenant_id, id, name) VALUES ($1, $2, $3)', [
      tenantId,
      site.id,
      site.name,
    ]);
    for (const [i, state] of site.states.entries()) {
      const { rows } = await su.query<{ id: string }>(
        `INSERT INTO spaces (tenant_id, site_id, code, name, state) VALUES ($1, $2, $3, $3, $4) RETURNING id`,
        [tenantId, site.id, `${site.name}-${i + 1}`, state],
      );
      spaceIds.push(rows[0]!.id);
    }
  }
  return spaceIds;
}

async function siteHour(
  tenantId: string,
  siteId: string,
  at: number,
  row: { rate: number; arrivals: number; median: number | null },
) {
  await su.query(
    `INSERT INTO site_occupancy_1h (tenant_id, bucket, site_id, spaces, occupancy_rate, arrivals, dwell_median_seconds)
     VALUES ($1, to_timestamp($2 / 1000.0), $3, 3, $4, $5, $6)`,
    [tenantId, at, siteId, row.rate, row.arrivals, row.median],
  );
}

beforeAll(async () => {
  su = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await su.connect();
  const aSpaces = await seedTenant(ids.a, [
    { id: ids.aNorth, name: 'North', states: ['free', 'occupied', 'occupied'] },
    { id: ids.aSouth, name: 'South', states: ['unknown'] },
  ]);
  const bSpaces = await seedTenant(ids.b, [
    { id: ids.bNorth, name: 'North', states: ['free', 'free', 'free', 'free', 'free'] },
  ]);
  await siteHour(ids.a, ids.aNorth, T0, { rate: 0.5, arrivals: 3, median: 600 });
  await siteHour(ids.a, ids.aNorth, T0 + H, { rate: 0.25, arrivals: 1, median: null });
  await siteHour(ids.a, ids.aSouth, T0, { rate: 1, arrivals: 0, median: null });
  await siteHour(ids.b, ids.bNorth, T0, { rate: 0.75, arrivals: 7, median: 60 });
  // Outside the dashboard's time range.
  await siteHour(ids.a, ids.aNorth, T0 - 48 * H, { rate: 0.125, arrivals: 9, median: 30 });
  for (const [tenantId, siteId, rate] of [
    [ids.a, ids.aNorth, 0.5],
    [ids.b, ids.bNorth, 0.75],
  ] as const)
    await su.query(
      `INSERT INTO site_occupancy_5m (tenant_id, bucket, site_id, spaces, occupancy_rate)
       VALUES ($1, to_timestamp($2 / 1000.0), $3, 3, $4)`,
      [tenantId, T0 + 5 * 60_000, siteId, rate],
    );
  for (const [tenantId, devEui, spaceId] of [
    [ids.a, devA, aSpaces[1]!],
    [ids.b, devB, bSpaces[0]!],
  ] as const) {
    await su.query(
      `INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')`,
      [tenantId, devEui, spaceId],
    );
    for (const [at, volts] of [
      [T0, 3.6],
      [T0 + H, 3.5],
    ] as const)
      await su.query(
        `INSERT INTO device_health_1h (tenant_id, bucket, dev_eui, uplinks, last_seen_at, battery_volts,
                                       min_battery_volts, mean_rssi, mean_snr)
         VALUES ($1, to_timestamp($2 / 1000.0), $3, 4, to_timestamp(($2 + 600000) / 1000.0), $4, $4, -90, 7)`,
        [tenantId, at, devEui, volts],
      );
  }
  for (const [tenantId, entity, cleared] of [
    [ids.a, devA, false],
    [ids.a, 'AA00000000000001', true],
    [ids.b, devB, false],
  ] as const)
    await su.query(
      `INSERT INTO liveness_alerts (tenant_id, alert_id, kind, entity_id, raised_at, last_heard_at, cleared_at,
                                    clear_event_id)
       VALUES ($1, gen_random_uuid(), 'device', $2, to_timestamp($3 / 1000.0), to_timestamp($4 / 1000.0),
               CASE WHEN $5 THEN to_timestamp($3 / 1000.0) END, CASE WHEN $5 THEN gen_random_uuid() END)`,
      [tenantId, entity, T0 + 2 * H, T0 + H, cleared],
    );

  connection = await connectAnalyst(su, config.postgres.migrateUrl, ids.a, 'g');
  analyst = connection.client;
});

afterAll(async () => {
  await connection?.close();
  await su?.end();
});

/** Query results as plain values: timestamps as ISO strings, numeric strings as numbers. */
async function rowsOf(sql: string): Promise<unknown[]> {
  const { rows } = await analyst.query<Record<string, unknown>>(sql);
  return rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        v instanceof Date
          ? v.toISOString()
          : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)
            ? Number(v)
            : v,
      ]),
    ),
  );
}

const series = (points: Array<[number, string, number]>) =>
  points.map(([at, metric, value]) => ({ time: iso(at), metric, value }));

/** Per dashboard uid and panel title, the rows tenant A's analyst must see for the range [T0 - 1 h, T0 + 3 h). */
const expected: Record<string, Record<string, unknown[]>> = {
  'parking-occupancy': {
    'Spaces now, by site': [
      { site: 'North', free: 1, occupied: 2, reserved: 0, maintenance: 0, unknown: 0, spaces: 3 },
      { site: 'South', free: 0, occupied: 0, reserved: 0, maintenance: 0, unknown: 1, spaces: 1 },
    ],
    'Occupancy rate by site, hourly': series([
      [T0, 'North', 0.5],
      [T0, 'South', 1],
      [T0 + H, 'North', 0.25],
    ]),
    'Occupancy rate by site, 5 minutes': series([[T0 + 5 * 60_000, 'North', 0.5]]),
    'Arrivals per hour (turnover)': series([
      [T0, 'North', 3],
      [T0, 'South', 0],
      [T0 + H, 'North', 1],
    ]),
    'Median dwell per hour': series([[T0, 'North', 600]]),
    'Device health (latest hour in range)': [
      {
        dev_eui: devA,
        site: 'North',
        space: 'North-2',
        last_seen_at: iso(T0 + H + 600_000),
        battery_volts: 3.5,
        min_battery_volts: 3.5,
        mean_rssi: -90,
        mean_snr: 7,
      },
    ],
    'Open liveness alerts': [
      { kind: 'device', entity_id: devA, raised_at: iso(T0 + 2 * H), last_heard_at: iso(T0 + H) },
    ],
  },
};

describe('Grafana provisioning', () => {
  it('provisions the datasource every panel and variable uses', () => {
    expect(datasources.map((d) => [d.uid, d.type, d.jsonData.database])).toEqual([
      ['parking-warehouse', 'grafana-postgresql-datasource', 'parking'],
    ]);
    const used = new Set(
      dashboards.flatMap((d) => [
        ...d.panels.flatMap((p) => [p.datasource.uid, ...p.targets.map((t) => t.datasource.uid)]),
        ...d.templating.list.map((v) => v.datasource.uid),
      ]),
    );
    expect([...used]).toEqual(['parking-warehouse']);
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length);
  });

  for (const dashboard of dashboards) {
    it(`${dashboard.title}: every panel returns exactly its tenant's rows to the analyst login`, async () => {
      const variable = dashboard.templating.list.find((v) => v.name === 'site')!;
      const sites = (await rowsOf(variable.query)) as Array<{ __text: string; __value: string }>;
      expect(sites).toEqual([
        { __text: 'North', __value: ids.aNorth },
        { __text: 'South', __value: ids.aSouth },
      ]);
      const want = expected[dashboard.uid] ?? {};
      const seen: Record<string, unknown[]> = {};
      for (const panel of dashboard.panels) {
        expect(panel.targets, panel.title).toHaveLength(1);
        const sql = expandGrafanaSql(panel.targets[0]!.rawSql, {
          from: T0 - H,
          to: T0 + 3 * H,
          variables: { site: sites.map((s) => s.__value) },
        });
        seen[panel.title] = await rowsOf(sql);
      }
      expect(seen).toEqual(want);
    });
  }
});
