import { start as startApi } from '../api/service.js';
import { start as startIngest } from '../ingest/service.js';
import { startOccupancy, type OccupancyProcessor } from '../processors/occupancy/run.js';
import { loadConfig, type Config } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db/pool.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import type { Logger } from '../lib/logger.js';
import { createTestTopic } from '../lib/testing/kafka-control.js';
import { discardMqttSessions } from '../lib/testing/mqtt-session.js';

/**
 * The whole platform in one process against the real local services, with its own topics, consumer group and
 * MQTT client id (named after `run`), so end-to-end tests and benchmarks never see another run's records.
 */
export type Processor = OccupancyProcessor;

/** Every topic the bridge writes, named after the run. */
export function testTopics(run: string): Config['topics'] {
  return {
    uplinks: `test-uplinks-${run}`,
    deadLetter: `test-dead-letter-${run}`,
    joins: `test-joins-${run}`,
    deviceStatus: `test-device-status-${run}`,
    deviceLocations: `test-device-locations-${run}`,
    downlinkOutcomes: `test-downlink-outcomes-${run}`,
    orphanUplinks: `test-orphan-uplinks-${run}`,
    occupancyChanges: `test-occupancy-changes-${run}`,
  };
}

export interface Pipeline {
  run: string;
  topics: Config['topics'];
  pipelinePool: Pool;
  apiPool: Pool;
  ingest: Awaited<ReturnType<typeof startIngest>>;
  apiPort: number;
  processor(): Processor | undefined;
  startProcessor(): Promise<Processor>;
  stopProcessor(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPipeline(run: string, logger: Logger, partitions = 3): Promise<Pipeline> {
  const config = loadConfig();
  const topics = testTopics(run);
  await createTestTopic(config.kafka.controlPort, topics.uplinks, partitions);
  await createTestTopic(config.kafka.controlPort, topics.occupancyChanges, partitions);
  for (const topic of [
    topics.deadLetter,
    topics.joins,
    topics.deviceStatus,
    topics.downlinkOutcomes,
    topics.orphanUplinks,
  ])
    await createTestTopic(config.kafka.controlPort, topic, 1);
  const pipelinePool = createPool(config.postgres.pipelineUrl, `pipeline-${run}`, 4);
  const apiPool = createPool(config.postgres.apiUrl, `api-${run}`, 4);
  const ingest = await startIngest({
    config: {
      mqtt: { ...config.mqtt, clientId: `ingest-${run}` },
      topics,
      ingest: { ...config.ingest, host: '127.0.0.1', httpPort: 0 },
    },
    logger,
    pipelinePool,
    kafka: createKafka(config.kafka, logger, `ingest-${run}`),
    registry: createSchemaRegistry(config.schemaRegistry),
  });
  const api = await startApi({ config: { host: '127.0.0.1', port: 0, consoleDist: '' }, apiPool, logger });
  let processor: Processor | undefined;
  const pipeline: Pipeline = {
    run,
    topics,
    pipelinePool,
    apiPool,
    ingest,
    apiPort: api.port,
    processor: () => processor,
    async startProcessor() {
      processor = await startOccupancy({
        kafka: createKafka(config.kafka, logger, `occupancy-${run}`),
        registry: createSchemaRegistry(config.schemaRegistry),
        pipelinePool,
        topics,
        groupId: `occupancy-${run}`,
        logger,
      });
      return processor;
    },
    async stopProcessor() {
      await processor?.stop();
      processor = undefined;
    },
    async stop() {
      await api.stop();
      await pipeline.stopProcessor();
      await ingest.stop();
      await discardMqttSessions(config.mqtt.url, [`ingest-${run}`]);
      await pipelinePool.end();
      await apiPool.end();
    },
  };
  await pipeline.startProcessor();
  return pipeline;
}
