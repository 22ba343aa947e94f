import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import { loadTopicCatalog, readValueSchema } from './catalog.js';
import { toCreateTopicsRequest } from './provision-topics.js';

describe('topic catalog', () => {
  const topics = loadTopicCatalog();

  it('names every topic once, each with a valid Avro value schema', () => {
    expect(new Set(topics.map((t) => t.name)).size).toBe(topics.length);
    for (const topic of topics) {
      expect(existsSync(topic.valueSchema), topic.valueSchema).toBe(true);
      expect(() => avro.Type.forSchema(JSON.parse(readValueSchema(topic)))).not.toThrow();
    }
  });

  it('turns into admin.createTopics requests with partitions, replication and retention', () => {
    const uplinks = toCreateTopicsRequest(topics).find((t) => t.topic === 'parking.uplinks.v1');
    expect(uplinks).toEqual({
      topic: 'parking.uplinks.v1',
      numPartitions: 6,
      replicationFactor: 3,
      configEntries: [
        { name: 'retention.ms', value: '604800000' },
        { name: 'cleanup.policy', value: 'delete' },
      ],
    });
  });
});
