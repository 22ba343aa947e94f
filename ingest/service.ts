import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db/pool.js';
import { createOperabilityApp } from '../lib/http/health.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { registerValueSchema } from '../lib/kafka/avro.js';
import { startKafkaSink } from '../lib/kafka/sink.js';
import { stopAll, type Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import { readAvroSchema } from '../schemas/catalog.js';
import type { DeadLetterRecord, UplinkRecord } from '../schemas/avro/records.js';
import { createBridge } from './bridge.js';
import { DeviceDirectory } from './device-directory.js';
import { createIngestMetrics } from './metrics.js';
import { startMqttSource } from './mqtt-source.js';

export interface IngestDeps {
  config: Pick<Config, 'mqtt' | 'topics' | 'ingest'>;
  logger: Logger;
  pipelinePool: Pool;
  kafka: Kafka;
  registry: SchemaRegistry;
}

/**
 * The ChirpStack bridge: registers the value schemas, opens the Kafka sink, then the sources (MQTT now; HTTP,
 * the v5 webhook and ChirpStack's Kafka integration join here). Stops sources first so nothing new arrives,
 * then the sink once in-flight records were acknowledged.
 */
export async function start(deps: IngestDeps) {
  const { config, logger } = deps;
  const metrics = createIngestMetrics();
  const uplinkSerde = await registerValueSchema<UplinkRecord>(
    deps.registry,
    config.topics.uplinks,
    readAvroSchema('uplink'),
  );
  const deadLetterSerde = await registerValueSchema<DeadLetterRecord>(
    deps.registry,
    config.topics.deadLetter,
    readAvroSchema('dead-letter'),
  );
  const directory = new DeviceDirectory(deps.pipelinePool);
  const sink = await startKafkaSink(deps.kafka);
  const bridge = createBridge({
    resolveDevice: (devEui) => directory.resolve(devEui),
    sink,
    uplinkSerde,
    deadLetterSerde,
    topics: config.topics,
    metrics,
    logger: logger.child({ component: 'bridge' }),
  });
  let draining = false;
  const mqttSource = await startMqttSource(config.mqtt, bridge, logger.child({ component: 'mqtt' }));
  const http = await listen(
    createOperabilityApp(metrics.registry, () => !draining && mqttSource.client.connected),
    config.ingest.host,
    config.ingest.httpPort,
  );
  logger.info({ port: http.port }, 'ingest http listening');
  const service: Service = {
    async stop() {
      draining = true;
      await stopAll([sink, { stop: () => closeServer(http.server) }, mqttSource]);
    },
  };
  return { ...service, bridge, metrics, directory, httpPort: http.port };
}
