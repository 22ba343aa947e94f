import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { createKafka } from '../../lib/kafka/client.js';
import { createLogger } from '../../lib/logger.js';
import { createTestTopic } from '../../lib/testing/kafka-control.js';
import { storedLag } from './lag.js';

const config = loadConfig();
const run = randomUUID().slice(0, 8);
const topic = `test-lag-${run}`;
const groupId = `lag-${run}`;
let pool: Pool;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

async function store(partition: number, nextOffset: number): Promise<void> {
  await pool.query(
    `INSERT INTO processor_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
     ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset`,
    [groupId, topic, partition, nextOffset],
  );
}

beforeAll(async () => {
  pool = createPool(config.postgres.pipelineUrl, 'lag-int', 2);
  await createTestTopic(config.kafka.controlPort, topic, 2);
  kafka = createKafka(config.kafka, createLogger('lag-int', 'error'), `lag-${run}`);
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    messages: [
      ...[1, 2, 3].map((i) => ({ partition: 0, value: `p0-${i}` })),
      ...[1, 2].map((i) => ({ partition: 1, value: `p1-${i}` })),
    ],
  });
});

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await pool?.end();
});

describe('storedLag', () => {
  it('sums, per partition, the log end minus the offset stored in PostgreSQL (the log start when none)', async () => {
    const deps = { pool, admin, groupId, topic };
    expect(await storedLag(deps)).toBe(5);
    await store(0, 1);
    expect(await storedLag(deps)).toBe(4);
    await store(1, 2);
    expect(await storedLag(deps)).toBe(2);
    await store(0, 3);
    expect(await storedLag(deps)).toBe(0);
    // Another group's offsets do not count.
    expect(await storedLag({ ...deps, groupId: `${groupId}-other` })).toBe(5);
  });
});
