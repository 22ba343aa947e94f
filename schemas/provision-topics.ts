/**
 * Creates the catalog's topics on a real Kafka cluster (`npx tsx schemas/provision-topics.ts`), with each
 * topic's partitions, replication factor and retention. Existing topics are left as they are and reported.
 * The local mock broker cannot run admin.createTopics; infra/services/kafka.sh creates the same topics there.
 */
import { loadConfig } from '../lib/config.js';
import { createKafka } from '../lib/kafka/client.js';
import { isMain } from '../lib/is-main.js';
import { createLogger } from '../lib/logger.js';
import { loadTopicCatalog, type TopicSpec } from './catalog.js';

export function toCreateTopicsRequest(topics: TopicSpec[]) {
  return topics.map((t) => ({
    topic: t.name,
    numPartitions: t.partitions,
    replicationFactor: t.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: String(t.retentionMs) },
      { name: 'cleanup.policy', value: 'delete' },
    ],
  }));
}

if (isMain(import.meta.url)) {
  const config = loadConfig();
  const logger = createLogger('provision-topics', config.logLevel);
  const admin = createKafka(config.kafka, logger, 'parking-provision').admin();
  await admin.connect();
  try {
    const catalog = loadTopicCatalog();
    const existing = new Set(await admin.listTopics());
    const missing = catalog.filter((t) => !existing.has(t.name));
    for (const t of catalog.filter((t) => existing.has(t.name))) console.log(`exists:  ${t.name}`);
    if (missing.length > 0) {
      await admin.createTopics({ topics: toCreateTopicsRequest(missing), waitForLeaders: true });
      for (const t of missing)
        console.log(`created: ${t.name} (${t.partitions} partitions, rf ${t.replicationFactor})`);
    }
  } finally {
    await admin.disconnect();
  }
}
