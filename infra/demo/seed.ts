/**
 * Seeds the demo tenant (idempotent), sends one ChirpStack uplink per demo sensor through MQTT, waits until the
 * API serves every space's state (so the demo is proven end to end), and prints the URLs.
 */
import mqtt from 'mqtt';
import pg from 'pg';
import { loadConfig } from '../../lib/config.js';
import { hashApiKey } from '../../lib/api-key.js';
import { nextFCnt, publishUplink, tbms100Payload } from '../../ingest/simulator/chirpstack-sim.js';
import { demoApiKey, demoApplicationId, demoSpaces, demoTenant } from './demo-data.js';

const config = loadConfig();

async function seed(): Promise<string> {
  const client = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO tenants (slug, name) VALUES ($1, $2)
       ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
      [demoTenant.slug, demoTenant.name],
    );
    const tenantId = rows[0]!.id;
    for (const space of demoSpaces) {
      const inserted = await client.query<{ id: string }>(
        `INSERT INTO spaces (tenant_id, code, name) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, code) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
        [tenantId, space.code, space.name],
      );
      await client.query(
        `INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec) VALUES ($1, $2, $3, 'browan-tbms100')
         ON CONFLICT (tenant_id, dev_eui) DO UPDATE SET space_id = EXCLUDED.space_id`,
        [tenantId, space.devEui, inserted.rows[0]!.id],
      );
    }
    await client.query(
      `INSERT INTO api_keys (tenant_id, name, key_hash, scopes) VALUES ($1, 'demo key', $2, '{spaces:read}')
       ON CONFLICT (key_hash) DO NOTHING`,
      [tenantId, hashApiKey(demoApiKey)],
    );
    await client.query('COMMIT');
    return tenantId;
  } finally {
    await client.end();
  }
}

/** The demo's pattern: every third space free, the others occupied. */
const expectedState = (i: number) => (i % 3 !== 0 ? 'occupied' : 'free');

/** Sends the readings; returns the network time of the last one. */
async function sendReadings(): Promise<number> {
  const client = await mqtt.connectAsync(config.mqtt.url, { clientId: `demo-seed-${process.pid}` });
  const fCntBase = nextFCnt();
  const now = Date.now();
  try {
    // Two matching readings a second apart per sensor: the occupancy debounce (default policy) confirms a
    // state only after two readings agree within 10 s.
    for (const reading of [0, 1]) {
      for (const [i, space] of demoSpaces.entries()) {
        await publishUplink(client, {
          applicationId: demoApplicationId,
          devEui: space.devEui,
          fCnt: fCntBase + reading,
          fPort: 102,
          payload: tbms100Payload(expectedState(i) === 'occupied'),
          time: new Date(now - 1_000 + reading * 1_000),
        });
      }
    }
  } finally {
    await client.endAsync();
  }
  return now;
}

/**
 * Waits until the API shows every demo space with this run's readings applied (last event at or after `since`)
 * and in the state they report: a state left over from an earlier run does not count.
 */
async function waitForApi(since: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const response = await fetch(`http://127.0.0.1:${config.api.port}/api/v6/spaces`, {
      headers: { 'x-api-key': demoApiKey },
    });
    if (response.ok) {
      const { data } = (await response.json()) as {
        data: Array<{ code: string; state: string; lastEventTime: string | null }>;
      };
      const live = demoSpaces.filter((space, i) => {
        const seen = data.find((s) => s.code === space.code);
        return seen?.state === expectedState(i) && Date.parse(seen.lastEventTime ?? '') >= since;
      }).length;
      if (live === demoSpaces.length) return live;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    'the demo uplinks did not reach the API within 30 s: see .data/log/{ingest,processors,api}.log',
  );
}

const tenantId = await seed();
const sentAt = await sendReadings();
const known = await waitForApi(sentAt);
const api = `http://127.0.0.1:${config.api.port}`;
console.log(`
Parking platform is up with demo data (tenant ${demoTenant.slug}, ${tenantId}; ${known} spaces live).
  Operator console   ${api}/console/            (API key: ${demoApiKey})
  API (v6)           ${api}/api/v6/spaces       (header X-API-Key: ${demoApiKey})
  API health/metrics ${api}/health  ${api}/metrics
  Ingest metrics     http://127.0.0.1:${config.ingest.httpPort}/metrics
  MQTT (ChirpStack)  ${config.mqtt.url}  topic application/<app>/device/<devEui>/event/up
  Kafka              ${config.kafka.brokers.join(',')}   Schema Registry ${config.schemaRegistry.url}
  PostgreSQL         ${new URL(config.postgres.migrateUrl).host} database ${new URL(config.postgres.migrateUrl).pathname.slice(1)}
Send more readings:  npx tsx ingest/simulator/send.ts --dev-eui ${demoSpaces[0]!.devEui} --occupied false
Stop everything:     npm run stack down
`);
