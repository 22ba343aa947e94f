import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Consumer, type EachMessagePayload, type Producer } from 'kafkajs';
import { loadConfig } from '../../lib/config.js';
import { createTestTopic, kafkaControl } from '../../lib/testing/kafka-control.js';

/**
 * The local broker (infra/services/kafka.sh up) as the rest of the stack uses it through kafkajs 2.2.4: idempotent
 * produce, consumer groups with committed offsets, and the fault control the other integration tests rely on.
 * Each test makes its own topic through the control port and closes every client it opened.
 */
const config = loadConfig();
const controlPort = config.kafka.controlPort;

// Short retries: the fault test must see a failure within seconds, not after kafkajs' default ~30 s of backoff.
const kafka = new Kafka({
  clientId: 'kafka-mock-int-test',
  brokers: [...config.kafka.brokers],
  connectionTimeout: 1_000,
  requestTimeout: 3_000,
  retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
  logLevel: logLevel.NOTHING,
});

const opened: Array<Producer | Consumer> = [];
function track<T extends Producer | Consumer>(client: T): T {
  opened.push(client);
  return client;
}

afterEach(async () => {
  // A test that failed half-way must not leave a broker down for the next test.
  await kafkaControl(controlPort, 'up 1');
  while (opened.length > 0) await opened.pop()?.disconnect();
});

async function newTopic(partitions: number): Promise<string> {
  return createTestTopic(controlPort, `test-kafka-mock-${randomUUID()}`, partitions);
}

/** Consumes with `groupId` until `count` messages arrived (then stops the consumer) or `timeoutMs` passed. */
async function consume(topic: string, groupId: string, count: number, timeoutMs = 20_000) {
  const consumer = track(kafka.consumer({ groupId, sessionTimeout: 6_000, heartbeatInterval: 500 }));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: Array<{ key: string; value: string; partition: number; offset: string }> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`received ${received.length}/${count} messages in ${timeoutMs} ms`)),
      timeoutMs,
    );
    void consumer.run({
      eachMessage: async ({ message, partition }: EachMessagePayload) => {
        received.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          partition,
          offset: message.offset,
        });
        if (received.length === count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  // disconnect() commits the offsets resolved so far (autoCommit) before leaving the group.
  await consumer.disconnect();
  return received;
}

describe('local kafka-mock broker', () => {
  beforeAll(async () => {
    await expect(kafkaControl(controlPort, 'ping')).resolves.toBe('ok');
  });

  it('creates the catalog topics with their partition counts', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({
        topics: ['parking.uplinks.v1', 'parking.dead-letter.v1'],
      });
      const partitions = Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ 'parking.uplinks.v1': 6, 'parking.dead-letter.v1': 3 });
    } finally {
      await admin.disconnect();
    }
  });

  it('delivers idempotently produced messages to a consumer group, same key on the same partition', async () => {
    const topic = await newTopic(3);
    const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    const messages = Array.from({ length: 12 }, (_, i) => ({
      key: `device-${i % 4}`,
      value: `reading-${i}`,
    }));
    const [result] = await producer.send({ topic, messages });
    expect(result?.errorCode).toBe(0);

    const received = await consume(topic, `group-${randomUUID()}`, messages.length);

    expect(received.map((m) => m.value).sort()).toEqual(messages.map((m) => m.value).sort());
    const partitionsByKey = new Map<string, Set<number>>();
    for (const m of received)
      partitionsByKey.set(m.key, (partitionsByKey.get(m.key) ?? new Set()).add(m.partition));
    expect([...partitionsByKey.values()].map((s) => s.size)).toEqual([1, 1, 1, 1]);
    // Per key, order is the send order.
    for (const key of partitionsByKey.keys()) {
      const values = received.filter((m) => m.key === key).map((m) => m.value);
      expect(values).toEqual(messages.filter((m) => m.key === key).map((m) => m.value));
    }
  });

  it('resumes a restarted consumer group from its committed offset', async () => {
    const topic = await newTopic(1);
    const groupId = `group-${randomUUID()}`;
    const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();

    await producer.send({ topic, messages: ['a0', 'a1', 'a2'].map((value) => ({ value })) });
    const first = await consume(topic, groupId, 3);
    expect(first.map((m) => [m.offset, m.value])).toEqual([
      ['0', 'a0'],
      ['1', 'a1'],
      ['2', 'a2'],
    ]);

    const admin = kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      expect(committed?.partitions).toEqual([{ partition: 0, offset: '3', metadata: null }]);
    } finally {
      await admin.disconnect();
    }

    await producer.send({ topic, messages: ['b3', 'b4'].map((value) => ({ value })) });
    // fromBeginning only applies without a committed offset: the restarted group must not see a0..a2 again.
    const second = await consume(topic, groupId, 2);
    expect(second.map((m) => [m.offset, m.value])).toEqual([
      ['3', 'b3'],
      ['4', 'b4'],
    ]);
  });

  it('fails sends while broker 1 is down and recovers after it is up again', async () => {
    const topic = await newTopic(1);
    const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'before' }] });

    await expect(kafkaControl(controlPort, 'down 1')).resolves.toBe('ok');
    // The listener is closed, so with the short retries above the send rejects in about half a second; the
    // deadline only turns a hang into a readable failure.
    let deadline: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      producer.send({ topic, messages: [{ value: 'while-down' }], timeout: 2_000 }).then(
        () => 'sent',
        () => 'rejected',
      ),
      new Promise<string>((resolve) => {
        deadline = setTimeout(() => resolve('still blocked after 15 s'), 15_000);
      }),
    ]);
    clearTimeout(deadline);
    expect(outcome).toBe('rejected');

    await expect(kafkaControl(controlPort, 'up 1')).resolves.toBe('ok');
    const recovered = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await recovered.connect();
    const [result] = await recovered.send({ topic, messages: [{ value: 'after' }] });
    expect(result?.errorCode).toBe(0);

    const received = await consume(topic, `group-${randomUUID()}`, 2);
    expect(received.map((m) => m.value)).toEqual(['before', 'after']);
  });

  it('answers unknown control commands with an error line', async () => {
    await expect(kafkaControl(controlPort, 'down 9')).rejects.toThrow(/error no broker 9/);
    await expect(kafkaControl(controlPort, 'create-topic bad/name 1')).rejects.toThrow(/invalid topic name/);
  });
});
