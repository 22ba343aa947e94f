import { randomBytes, randomUUID } from 'node:crypto';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Consumer } from 'kafkajs';
import pg from 'pg';
import { loadConfig, type Config } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createSchemaRegistry } from '../../lib/kafka/avro.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { createTestTenant, type TestTenant } from '../../lib/testing/fixtures.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { discardMqttSessions } from '../../lib/testing/mqtt-session.js';
import { outcomeCounts } from '../metrics.js';
import { start, type IngestDeps } from '../service.js';

/**
 * One bridge for an integration test file, against the real local services: its own topics, tenant, ChirpStack
 * application id (registered to the tenant) and MQTT subscription limited to that application, so concurrent
 * runs never see each other's events; a reader decodes every record with a fresh Schema Registry client.
 * `db` is a client of the migration identity, to change configuration the way the API would.
 */
export async function startIngestHarness(
  name: string,
  overrides: Pick<IngestDeps, 'orphans' | 'redis'> = {},
) {
  const config = loadConfig();
  const logger = createLogger(name, 'silent');
  const run = randomUUID().slice(0, 8);
  // Every configured topic, named after the run (not e2e's helper: ingest tests must not load the API).
  const topics = Object.fromEntries(
    Object.entries(config.topics).map(([key, topic]) => [key, `test-${topic}-${run}`]),
  ) as Config['topics'];
  const control = config.kafka.controlPort;
  const applicationId = randomUUID();
  const mqttClientId = `${name}-${run}`;
  for (const topic of Object.values(topics)) await createTestTopic(control, topic, 1);
  const tenant: TestTenant = await createTestTenant();
  const db = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await db.connect();
  await db.query(
    'INSERT INTO chirpstack_applications (tenant_id, application_id, chirpstack_tenant_id, name) VALUES ($1, $2, $3, $4)',
    [tenant.tenantId, applicationId, randomUUID(), `app ${run}`],
  );
  const pool: Pool = createPool(config.postgres.pipelineUrl, `${name}-${run}`, 4);
  /** A bridge instance on this harness's topics and MQTT subscription, as its own MQTT client. */
  const startInstance = (clientId: string, extra: Pick<IngestDeps, 'orphans' | 'redis'> = {}) =>
    start({
      config: {
        mqtt: {
          ...config.mqtt,
          clientId,
          eventTopic: `application/${applicationId}/device/+/event/+`,
        },
        topics,
        ingest: {
          ...config.ingest,
          host: '127.0.0.1',
          httpPort: 0,
          chirpstackKafka: { topic: '', groupId: '' },
        },
      },
      logger,
      pipelinePool: pool,
      kafka: createKafka(config.kafka, logger, clientId),
      registry: createSchemaRegistry(config.schemaRegistry),
      ...overrides,
      ...extra,
    });
  const ingest = await startInstance(mqttClientId);
  const peers: Array<{ clientId: string; ingest: Awaited<ReturnType<typeof start>> }> = [];
  const seen: Array<{ topic: string; key: string; record: Record<string, unknown> }> = [];
  const fresh = new SchemaRegistry({ host: config.schemaRegistry.url });
  const reader: Consumer = createKafka(config.kafka, logger, `${name}-reader-${run}`).consumer({
    groupId: `${name}-reader-${run}`,
    maxWaitTimeInMs: 100,
  });
  await reader.connect();
  await reader.subscribe({ topics: Object.values(topics), fromBeginning: true });
  await reader.run({
    eachMessage: async ({ topic, message }) => {
      if (!message.value) return;
      const record = (await fresh.decode(message.value)) as Record<string, unknown>;
      seen.push({ topic, key: message.key?.toString() ?? '', record });
    },
  });

  const counts = () => outcomeCounts(ingest.metrics);

  return {
    config,
    run,
    topics,
    tenant,
    applicationId,
    db,
    pool,
    ingest,
    seen,
    counts,
    /**
     * Starts another bridge instance on the same topics, MQTT subscription (its own persistent session, so it
     * receives every event too) and database, the way a second replica runs (`extra`: e.g. its own Redis
     * connection); stopped with the harness.
     */
    async startPeer(extra: Pick<IngestDeps, 'orphans' | 'redis'> = {}) {
      const clientId = `${mqttClientId}-peer${peers.length + 1}`;
      const peer = await startInstance(clientId, extra);
      peers.push({ clientId, ingest: peer });
      return peer;
    },
    /** Records on `topic` whose eventId is one of `eventIds` (every copy: a duplicate shows as two). */
    recordsOn(topic: string, eventIds: Iterable<string>) {
      const ids = new Set(eventIds);
      return seen.filter((s) => s.topic === topic && ids.has(String(s.record['eventId'])));
    },
    /** Makes a new current webhook secret for `tenantId`, the current one previous, and revokes the previous. */
    async rotateWebhookSecret(tenantId = tenant.tenantId): Promise<Buffer> {
      const secret = randomBytes(32);
      await db.query('BEGIN');
      try {
        await db.query(
          "UPDATE webhook_secrets SET status = 'revoked' WHERE tenant_id = $1 AND status = 'previous'",
          [tenantId],
        );
        await db.query(
          `UPDATE webhook_secrets SET status = 'previous', rotated_at = now(), expires_at = now() + interval '1 day'
            WHERE tenant_id = $1 AND status = 'current'`,
          [tenantId],
        );
        await db.query('INSERT INTO webhook_secrets (tenant_id, secret) VALUES ($1, $2)', [tenantId, secret]);
        await db.query('COMMIT');
      } catch (error) {
        await db.query('ROLLBACK');
        throw error;
      }
      return secret;
    },
    async stop() {
      await reader.disconnect().catch(() => undefined);
      for (const peer of peers) await peer.ingest.stop();
      await ingest.stop();
      await pool.end();
      await db.end();
      await discardMqttSessions(config.mqtt.url, [mqttClientId, ...peers.map((p) => p.clientId)]);
    },
  };
}

export type IngestHarness = Awaited<ReturnType<typeof startIngestHarness>>;
