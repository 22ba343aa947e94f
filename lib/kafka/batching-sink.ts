import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { Service } from '../lifecycle.js';
import { PlatformError } from '../errors.js';
import type { KeyedRecord, RecordSink } from './sink.js';

/** The one producer call the batching sink makes: kafkajs' `producer.sendBatch` fits it. */
export interface BatchProducer {
  sendBatch(batch: {
    acks: -1;
    topicMessages: Array<{ topic: string; messages: KeyedRecord[] }>;
  }): Promise<unknown>;
}

export interface BatchingOptions {
  /** Records per producer call at most (a single larger `send` still goes out whole, alone). */
  maxBatchRecords: number;
  /** How long a partial batch waits for more records while no batch is in flight, ms. */
  lingerMs: number;
  /** Records admitted (queued or in flight) at most; beyond it `send` waits for space (backpressure). */
  maxQueuedRecords: number;
  /** A batch unacknowledged for longer than this marks the sink unhealthy, ms. */
  stallMs: number;
}

export const defaultBatchingOptions: BatchingOptions = {
  maxBatchRecords: 500,
  lingerMs: 5,
  maxQueuedRecords: 10_000,
  stallMs: 2_000,
};

export interface SendOptions {
  /**
   * Stops waiting. Records still queued are withdrawn (they will never be sent); records already handed to the
   * producer may still land, so an aborted send means "not known to be durable", never "certainly not sent".
   */
  signal?: AbortSignal;
}

export interface BatchingSink extends RecordSink {
  send(topic: string, records: KeyedRecord[], options?: SendOptions): Promise<void>;
  /** Records admitted and not yet acknowledged. */
  pending(): number;
  /** False while the last batch failed, or the one in flight has waited longer than `stallMs`. */
  healthy(): boolean;
  /** Resolves once everything admitted so far was acknowledged (or failed). */
  flush(): Promise<void>;
  /** Refuses new sends (SHUTTING_DOWN, retriable), then flushes. */
  close(): Promise<void>;
}

interface Entry {
  topic: string;
  records: KeyedRecord[];
  resolve(): void;
  reject(error: unknown): void;
  state: 'waiting' | 'queued' | 'sent' | 'done';
}

/**
 * Collects concurrent `send` calls into one producer call per batch (up to `maxBatchRecords` records, or whatever
 * arrived within `lingerMs`), with acks = -1, and resolves each caller when the batch holding its records was
 * acknowledged. One batch is in flight at a time, and calls are admitted strictly in call order, so records keep
 * their order per partition (the idempotent producer keeps it across broker retries). Memory is bounded: at
 * most `maxQueuedRecords` records are admitted; later callers wait, in order, for space.
 */
export function createBatchingSink(
  producer: BatchProducer,
  options: Partial<BatchingOptions> = {},
  now: () => number = Date.now,
): BatchingSink {
  const o: BatchingOptions = { ...defaultBatchingOptions, ...options };
  const waiting: Entry[] = [];
  const queue: Entry[] = [];
  let admitted = 0;
  let queuedRecords = 0;
  let inFlight: Promise<void> | null = null;
  let inFlightSince = 0;
  let lastFailed = false;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const idle: Array<() => void> = [];

  const admit = (entry: Entry) => {
    entry.state = 'queued';
    queue.push(entry);
    admitted += entry.records.length;
    queuedRecords += entry.records.length;
  };
  const fits = (n: number) => admitted === 0 || admitted + n <= o.maxQueuedRecords;

  function admitWaiting(): void {
    while (waiting.length > 0 && fits(waiting[0]!.records.length)) admit(waiting.shift()!);
  }

  function schedule(): void {
    if (inFlight || queue.length === 0) return;
    if (queuedRecords >= o.maxBatchRecords || o.lingerMs === 0) {
      dispatch();
    } else if (!timer) {
      timer = setTimeout(dispatch, o.lingerMs);
    }
  }

  function dispatch(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    if (inFlight || queue.length === 0) return;
    const batch: Entry[] = [];
    let count = 0;
    while (queue.length > 0) {
      const n = queue[0]!.records.length;
      if (batch.length > 0 && count + n > o.maxBatchRecords) break;
      const entry = queue.shift()!;
      entry.state = 'sent';
      batch.push(entry);
      count += n;
    }
    queuedRecords -= count;
    const byTopic = new Map<string, KeyedRecord[]>();
    for (const entry of batch) {
      const list = byTopic.get(entry.topic) ?? [];
      list.push(...entry.records);
      byTopic.set(entry.topic, list);
    }
    inFlightSince = now();
    inFlight = producer
      .sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
      .then(
        () => {
          inFlight = null;
          lastFailed = false;
          for (const entry of batch) settle(entry, null);
        },
        (error: unknown) => {
          inFlight = null;
          lastFailed = true;
          const failure = new PlatformError('KAFKA_UNAVAILABLE', 'Kafka did not acknowledge the batch', {
            cause: error,
            retriable: true,
          });
          for (const entry of batch) settle(entry, failure);
        },
      )
      .finally(() => {
        admitted -= count;
        admitWaiting();
        // Records that arrived while this batch was in flight already waited: send them now.
        if (queue.length > 0) dispatch();
        else checkIdle();
      });
  }

  function checkIdle(): void {
    if (admitted === 0 && inFlight === null) for (const resolve of idle.splice(0)) resolve();
  }

  function settle(entry: Entry, error: unknown): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    if (error === null) entry.resolve();
    else entry.reject(error);
  }

  async function flush(): Promise<void> {
    if (admitted === 0 && inFlight === null) return;
    dispatch();
    await new Promise<void>((resolve) => idle.push(resolve));
  }

  return {
    send(topic, records, options = {}) {
      if (closed) {
        return Promise.reject(
          new PlatformError('SHUTTING_DOWN', 'the Kafka sink is closing', { retriable: true }),
        );
      }
      if (records.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const { signal } = options;
        const onAbort = () => {
          if (entry.state === 'waiting') waiting.splice(waiting.indexOf(entry), 1);
          if (entry.state === 'queued') {
            queue.splice(queue.indexOf(entry), 1);
            admitted -= entry.records.length;
            queuedRecords -= entry.records.length;
            admitWaiting();
            checkIdle();
          }
          settle(
            entry,
            new PlatformError('KAFKA_UNAVAILABLE', 'Kafka did not acknowledge in time', {
              cause: signal?.reason,
              retriable: true,
            }),
          );
        };
        const entry: Entry = {
          topic,
          records,
          state: 'waiting',
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          reject: (error) => {
            signal?.removeEventListener('abort', onAbort);
            reject(error);
          },
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        // Admitted synchronously when there is room and nobody waits before it, so call order is send order.
        if (waiting.length === 0 && fits(records.length)) {
          admit(entry);
          schedule();
        } else {
          waiting.push(entry);
        }
      });
    },
    pending: () => admitted + waiting.reduce((n, e) => n + e.records.length, 0),
    healthy: () => !lastFailed && !(inFlight !== null && now() - inFlightSince > o.stallMs),
    flush,
    async close() {
      closed = true;
      await flush();
    },
  };
}

/** A kafkajs producer as a BatchProducer. */
export function asBatchProducer(producer: Producer): BatchProducer {
  return { sendBatch: (batch) => producer.sendBatch({ ...batch, topicMessages: batch.topicMessages }) };
}

/**
 * The ingest sink: the idempotent producer of startKafkaSink (acks = -1, unlimited retries, murmur2 keys) behind
 * a BatchingSink, so concurrent sends share one producer call per batch. `stop` refuses new sends, waits for
 * everything admitted to be acknowledged, then disconnects the producer.
 */
export async function startBatchingKafkaSink(
  kafka: Kafka,
  options: Partial<BatchingOptions> = {},
): Promise<BatchingSink & Service> {
  const producer = kafka.producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
  await producer.connect();
  const sink = createBatchingSink(asBatchProducer(producer), options);
  return {
    ...sink,
    async stop() {
      await sink.close();
      await producer.disconnect();
    },
  };
}
