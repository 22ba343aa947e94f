import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db/pool.js';
import { createOperabilityApp } from '../lib/http/health.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { registerValueSchema } from '../lib/kafka/avro.js';
import { startBatchingKafkaSink } from '../lib/kafka/batching-sink.js';
import { startKafkaProbe } from '../lib/kafka/probe.js';
import { stopAll, type Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import { readAvroSchema } from '../schemas/catalog.js';
import { createBridge, type BridgeSerdes } from './bridge.js';
import { Deduplicator } from './dedup.js';
import { startChangeListener, changeChannels } from './change-listener.js';
import { ApplicationDirectory, DeviceDirectory } from './device-directory.js';
import { mountHttpSource, serveEventsFirst } from './http-source.js';
import { startChirpStackKafkaSource } from './kafka-source.js';
import { createIngestMetrics } from './metrics.js';
import { startMqttSource } from './mqtt-source.js';
import { PgOrphanSink } from './orphan-store.js';
import { MemoryOrphanSink, type OrphanSink } from './orphans.js';
import { createRedisDedupStore } from './redis-dedup-store.js';
import { WebhookSecretStore } from './webhook-secrets.js';
import { mountWebhookV5Source } from './webhook-v5-source.js';

export interface IngestDeps {
  config: Pick<Config, 'mqtt' | 'topics' | 'ingest'>;
  logger: Logger;
  pipelinePool: Pool;
  kafka: Kafka;
  registry: SchemaRegistry;
  /** Shares dedup keys between bridge instances; without it each instance dedups on its own. */
  redis?: Redis | undefined;
  /** Where unknown DevEUIs are recorded; by default table orphan_devices (PgOrphanSink). */
  orphans?: OrphanSink;
}

/**
 * The ChirpStack bridge: registers the value schemas, opens the batching Kafka sink, then the sources (MQTT,
 * HTTP integration endpoint, ChirpStack's Kafka integration when configured). `stop` drains: readiness goes
 * false, sources stop taking new events and finish (MQTT acknowledges what became durable, HTTP answers
 * in-flight requests, the Kafka source commits), then the sink flushes its batches and the producer disconnects.
 */
export async function start(deps: IngestDeps) {
  const { config, logger } = deps;
  const { topics } = config;
  const metrics = createIngestMetrics();
  const register = <T>(topic: string, file: Parameters<typeof readAvroSchema>[0]) =>
    registerValueSchema<T>(deps.registry, topic, readAvroSchema(file));
  const serdes: BridgeSerdes = {
    uplink: await register(topics.uplinks, 'uplink'),
    join: await register(topics.joins, 'join'),
    deviceStatus: await register(topics.deviceStatus, 'device-status'),
    deviceLocation: await register(topics.deviceLocations, 'device-location'),
    downlinkOutcome: await register(topics.downlinkOutcomes, 'downlink-outcome'),
    orphanUplink: await register(topics.orphanUplinks, 'orphan-uplink'),
    deadLetter: await register(topics.deadLetter, 'dead-letter'),
  };
  const directory = new DeviceDirectory(deps.pipelinePool);
  const applications = new ApplicationDirectory(deps.pipelinePool);
  const secrets = new WebhookSecretStore(deps.pipelinePool);
  // Assignment, secret and application changes reach the caches without a restart; after a reconnect (changes
  // may have been missed) every cache starts over.
  const changes = await startChangeListener(
    deps.pipelinePool,
    {
      [changeChannels.sensorDevices]: (devEui) => directory.forget(devEui),
      [changeChannels.webhookSecrets]: (tenantId) => secrets.forget(tenantId),
      [changeChannels.chirpstackApplications]: (applicationId) => applications.forget(applicationId),
    },
    () => {
      directory.clear();
      secrets.clear();
      applications.clear();
    },
    logger.child({ component: 'change-listener' }),
  );
  const probe = await startKafkaProbe(deps.kafka, topics.uplinks);
  const sink = await startBatchingKafkaSink(deps.kafka, config.ingest.batch);
  metrics.setSinkPending(() => sink.pending());
  const dedupLogger = logger.child({ component: 'dedup' });
  const dedup = new Deduplicator({
    maxEntries: config.ingest.dedup.maxEntries,
    ttlMs: config.ingest.dedup.ttlMs,
    shared: deps.redis && config.ingest.dedup.redis ? createRedisDedupStore(deps.redis) : undefined,
    onSharedError: (error) => {
      metrics.dedupStoreErrors.inc();
      dedupLogger.warn({ err: error }, 'shared dedup store failed; using the local window');
    },
  });
  // The sink flushes on stop, after the sources stopped (so every orphan they noted is written).
  const orphanStore = deps.orphans
    ? undefined
    : new PgOrphanSink(deps.pipelinePool, logger.child({ component: 'orphans' }), metrics);
  const orphans: OrphanSink = deps.orphans ?? orphanStore ?? new MemoryOrphanSink();
  const bridge = createBridge({
    resolveDevice: (devEui) => directory.resolve(devEui),
    sink,
    serdes,
    topics,
    dedup,
    orphans,
    metrics,
    logger: logger.child({ component: 'bridge' }),
  });
  let draining = false;
  const kafkaAvailable = () => probe.reachable() && sink.healthy();
  const mqttSource = await startMqttSource(
    config.mqtt,
    bridge,
    logger.child({ component: 'mqtt' }),
    metrics,
    {
      maxInFlight: config.ingest.mqttMaxInFlight,
    },
  );
  const app = createOperabilityApp(
    metrics.registry,
    () => !draining && kafkaAvailable() && mqttSource.client.connected,
  );
  const chirpstackEvents = mountHttpSource(
    app,
    bridge,
    { accepting: () => !draining && kafkaAvailable() },
    {
      bodyLimitBytes: config.ingest.bodyLimitBytes,
      timeoutMs: config.ingest.httpTimeoutMs,
      retryAfterSeconds: 5,
    },
    logger.child({ component: 'http' }),
  );
  mountWebhookV5Source(
    app,
    bridge,
    {
      tenantOfDevice: async (devEui) => (await directory.resolve(devEui))?.tenantId ?? null,
      tenantOfApplication: (applicationId) => applications.tenantOf(applicationId),
      secretsOf: (tenantId) => secrets.valid(tenantId),
    },
    { accepting: () => !draining && kafkaAvailable() },
    {
      bodyLimitBytes: config.ingest.bodyLimitBytes,
      timeoutMs: config.ingest.httpTimeoutMs,
      retryAfterSeconds: 5,
    },
    metrics,
    logger.child({ component: 'webhook-v5' }),
  );
  const http = await listen(app, config.ingest.host, config.ingest.httpPort);
  serveEventsFirst(http.server, chirpstackEvents);
  logger.info({ port: http.port }, 'ingest http listening');
  const { chirpstackKafka } = config.ingest;
  const kafkaSource = chirpstackKafka.topic
    ? await startChirpStackKafkaSource(
        deps.kafka,
        bridge,
        { topic: chirpstackKafka.topic, groupId: chirpstackKafka.groupId, window: 500 },
        logger.child({ component: 'chirpstack-kafka' }),
      )
    : undefined;
  const service: Service = {
    async stop() {
      draining = true;
      // stopAll stops in reverse order: sources first, then the sink (flush + producer), then the probe.
      await stopAll([
        changes,
        probe,
        sink,
        orphanStore,
        { stop: () => closeServer(http.server) },
        mqttSource,
        kafkaSource,
      ]);
    },
  };
  return {
    ...service,
    bridge,
    metrics,
    directory,
    secrets,
    changes,
    dedup,
    orphans,
    sink,
    httpPort: http.port,
    mqtt: mqttSource.client,
  };
}
