/**
 * End-to-end throughput of the walking skeleton on the local stack: ChirpStack-format uplinks published on MQTT
 * (QoS 1) -> ingest -> Kafka -> occupancy -> TimescaleDB. Prints MQTT publish rate, the bridge's rate into
 * Kafka, and the end-to-end rate into the database. Bounded: at most `count` uplinks and `timeoutMs`.
 */
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import pg from 'pg';
import { startPipeline } from '../e2e/pipeline.js';
import { publishUplink, tbms100Payload } from '../ingest/simulator/chirpstack-sim.js';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';

export interface ThroughputResult {
  count: number;
  publishPerSecond: number;
  ingestPerSecond: number;
  endToEndPerSecond: number;
}

export async function createBenchTenant(
  migrateUrl: string,
  devices: number,
): Promise<{ tenantId: string; devEuis: string[] }> {
  const client = new pg.Client({ connectionString: migrateUrl });
  await client.connect();
  try {
    const slug = `bench-${randomUUID().slice(0, 8)}`;
    const { rows } = await client.query<{ id: string }>(
      'INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id',
      [slug],
    );
    const tenantId = rows[0]!.id;
    const devEuis = Array.from({ length: devices }, (_, i) =>
      `BE${randomUUID().replace(/-/g, '').slice(0, 8)}${i.toString(16).padStart(6, '0')}`.toUpperCase(),
    );
    await client.query(
      `WITH s AS (
         INSERT INTO spaces (tenant_id, code, name)
         SELECT $1, 'B-' || n, 'bench ' || n FROM generate_series(1, $2) AS n RETURNING id, code)
       INSERT INTO sensor_devices (tenant_id, dev_eui, space_id, codec)
       SELECT $1, ($3::text[])[substr(s.code, 3)::int], s.id, 'browan-tbms100' FROM s`,
      [tenantId, devices, devEuis],
    );
    return { tenantId, devEuis };
  } finally {
    await client.end();
  }
}

export async function pipelineThroughput({
  count = 5_000,
  devices = 200,
  window = 500,
  timeoutMs = 120_000,
} = {}) {
  const config = loadConfig();
  const logger = createLogger('bench', 'error');
  const run = `bench-${randomUUID().slice(0, 8)}`;
  const { tenantId, devEuis } = await createBenchTenant(config.postgres.migrateUrl, devices);
  const pipeline = await startPipeline(run, logger, 6);
  const publisher = await mqtt.connectAsync(config.mqtt.url, { clientId: `pub-${run}` });
  const deadline = Date.now() + timeoutMs;
  try {
    const started = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const devEui = devEuis[i % devices]!;
      const p = publishUplink(publisher, {
        devEui,
        fCnt: Math.floor(i / devices) + 1,
        fPort: 102,
        payload: tbms100Payload(i % 2 === 0),
        time: new Date(Date.now() - count + i),
      }).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const published = performance.now();
    const waitFor = async (probe: () => Promise<number>) => {
      while ((await probe()) < count) {
        if (Date.now() > deadline) throw new Error(`benchmark timed out after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return performance.now();
    };
    const ingested = await waitFor(async () => {
      const metric = await pipeline.ingest.metrics.published.get();
      return metric.values.reduce((sum, v) => sum + v.value, 0);
    });
    const landed = await waitFor(async () => {
      const { rows } = await pipeline.pipelinePool.query<{ n: string }>(
        'SELECT count(*) AS n FROM uplinks WHERE tenant_id = $1',
        [tenantId],
      );
      return Number(rows[0]!.n);
    });
    const rate = (end: number) => Math.round((count / (end - started)) * 1000);
    return {
      count,
      publishPerSecond: rate(published),
      ingestPerSecond: rate(ingested),
      endToEndPerSecond: rate(landed),
    };
  } finally {
    await publisher.endAsync();
    await pipeline.stop();
  }
}
