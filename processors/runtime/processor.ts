import type { Consumer, ConsumerRunConfig, Kafka, KafkaMessage } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import { toPlatformError, type PlatformError } from '../../lib/errors.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { backoffDelayMs } from './backoff.js';
import { processorMetrics } from './metrics.js';
import {
  decideResumeOffset,
  loadOffsets,
  lockOffset,
  lockOffsets,
  resetOffset,
  storeOffset,
  storeOffsets,
  type PartitionKey,
} from './offsets.js';
import { writeOutbox, type OutboxMessage } from './outbox.js';

/**
 * The runtime every stateful processor runs on: Kafka in, one PostgreSQL transaction per bounded batch out.
 *
 * Contract (what a handler can rely on):
 * - Effectively once. A batch's effects, its outbox rows and the partition's next offset are committed in ONE
 *   transaction; the offset row is locked first and records below the stored offset are skipped, so a record's
 *   effects are committed exactly once even when a crashed or rebalanced consumer redelivers it.
 * - Resume from PostgreSQL. On start and on every rebalance (GROUP_JOIN) each assigned partition is sought to
 *   its stored offset (earliest when none). A fetch that still starts past the stored offset (a gap) is refused
 *   and the partition sought back. Kafka commits follow each transaction but are informational only (lag tools).
 * - Order. Records of one partition are applied in offset order; `apply` sees them in that order.
 * - Errors. `decode` and `apply` throw PlatformErrors. Retriable: the batch is retried with exponential backoff,
 *   nothing advances. Not retriable: the batch is retried record by record and each failing record is sent to
 *   the dead-letter topic (code in the `error-code` header) before its offset advances — a dead letter may be
 *   sent twice if the process dies between the two (at least once).
 * - Bounded. At most `maxBatch` records per transaction; kafkajs fetches at most `maxBytesPerPartition`.
 * - Pipelined group commit (opt-in, `partitionsConsumedConcurrently` > 1). eachBatch only decodes and queues
 *   (at most 4 × `maxBatch` records); one committer per lane (`committers`, partition mod lanes) applies its
 *   queue, several partitions and fetches per transaction (offset rows locked in partition order), up to
 *   `maxBatch` records: `apply` then sees several
 *   partitions' records, each partition's in offset order, one partition after the other. The fence above still
 *   decides what is applied. A chunk with an undecodable record, and every chunk of a shared transaction that
 *   failed non-retriably, is applied alone with the rules above; a retriable failure retries the whole
 *   transaction with backoff. Kafka commits are sent after each transaction without being awaited.
 * - Drain. `stop()` lets the batch in flight (pipelined: the queue) commit, then leaves the group within
 *   `drainMs`.
 */
export interface ProcessorHandler<T> {
  /** Names the processor in metrics, logs and dead letters. */
  name: string;
  decode(message: KafkaMessage): Promise<T>;
  /** Applies records in order inside the runtime's transaction; returns the events to publish via the outbox. */
  apply(client: PoolClient, records: readonly T[]): Promise<{ outbox: OutboxMessage[] }>;
}

export interface DeadLetterSink {
  send(failed: {
    processor: string;
    error: PlatformError;
    topic: string;
    partition: number;
    offset: string;
    message: KafkaMessage;
  }): Promise<void>;
}

export interface ProcessorOptions {
  groupId: string;
  topic: string;
  maxBatch?: number;
  /**
   * Partitions of one fetch handled at once, their chunks committed in one shared transaction (default 1: one
   * transaction per partition chunk, and `apply` sees one partition's records at a time).
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Pipelined mode only: transactions in flight at once, each over its own partitions (partition mod
   * `committers`), so the database works on several batches at a time (default 1). Partitions never share a
   * committer's transaction with another lane, so offsets and per-key order stay as with one.
   */
  committers?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  drainMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

export interface ProcessorDeps<T> {
  kafka: Kafka;
  pool: Pool;
  handler: ProcessorHandler<T>;
  deadLetter: DeadLetterSink;
  logger: Logger;
  registry: Registry;
  /** Called after each committed transaction that wrote outbox rows (the relay's kick). */
  onOutbox?: () => void;
  options: ProcessorOptions;
}

export interface Processor extends Service {
  /** Records applied (effects committed) by this instance since it started. */
  applied(): number;
  /** Partitions currently assigned to this instance. */
  assigned(): number[];
}

const defaults = {
  maxBatch: 1_000,
  partitionsConsumedConcurrently: 1,
  committers: 1,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1_000,
  drainMs: 10_000,
  backoff: { initialMs: 100, maxMs: 5_000 },
};

class GapError extends Error {
  constructor(readonly storedOffset: bigint) {
    super(`fetch started past the stored offset ${storedOffset}`);
  }
}

export async function startProcessor<T>(deps: ProcessorDeps<T>): Promise<Processor> {
  const options = { ...defaults, ...deps.options };
  const { handler, logger, pool } = deps;
  const metrics = processorMetrics(deps.registry);
  const name = handler.name;
  const admin = deps.kafka.admin();
  let applied = 0;
  let assigned: number[] = [];
  let running = true;
  let crashes = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarting: Promise<void> | undefined;

  function createConsumer(): Consumer {
    const created = deps.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      rebalanceTimeout: Math.max(options.sessionTimeoutMs, 10_000),
      heartbeatInterval: options.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 1_048_576,
      // Let the broker gather records for up to 50 ms: a transaction per trickling record caps throughput.
      minBytes: 64 * 1024,
      maxWaitTimeInMs: 50,
    });
    created.on(created.events.GROUP_JOIN, ({ payload }) => {
      crashes = 0;
      assigned = [...(payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b);
      seekToStored(assigned).catch((error: unknown) =>
        logger.warn(
          { err: error, processor: name },
          'seeking to stored offsets failed; the offset fence still holds',
        ),
      );
    });
    // kafkajs restarts a crashed consumer only after a retriable error; after any other (e.g. a SyncGroup
    // answered with INVALID_REQUEST because the group completed without this member, which the local mock broker
    // does when the leader syncs first) it disconnects for good, and the instance would hold no partition while
    // looking alive. A new consumer rejoins the group instead, with backoff.
    created.on(created.events.CRASH, ({ payload }) => {
      if (payload.restart || !running || created !== consumer) return;
      assigned = [];
      const code = toPlatformError(payload.error, 'KAFKA_UNAVAILABLE').code;
      metrics.errors.inc({ processor: name, code, handling: 'consumer-restarted' });
      logger.error({ err: payload.error, processor: name }, 'consumer crashed for good; starting a new one');
      scheduleRestart();
    });
    return created;
  }

  /** Replaces a consumer kafkajs gave up on with a new one, with backoff, until one runs or stop() is called. */
  function scheduleRestart(): void {
    crashes += 1;
    restartTimer = setTimeout(
      () => {
        restarting = (async () => {
          if (!running) return;
          consumer = createConsumer();
          await runConsumer(consumer);
        })()
          .catch((error: unknown) => {
            logger.error({ err: error, processor: name }, 'starting a new consumer failed; retrying');
            consumer.disconnect().catch(() => undefined);
            if (running) scheduleRestart();
          })
          .finally(() => (restarting = undefined));
      },
      backoffDelayMs(crashes, options.backoff, Math.random),
    );
  }

  let consumer = createConsumer();

  async function seekToStored(partitions: number[]): Promise<void> {
    if (partitions.length === 0) return;
    const stored = await loadOffsets(pool, options.groupId, options.topic, partitions);
    const range = new Map(
      (await admin.fetchTopicOffsets(options.topic)).map((p) => [p.partition, p] as const),
    );
    for (const partition of partitions) {
      const r = range.get(partition);
      const decision = decideResumeOffset(
        stored.get(partition),
        BigInt(r?.low ?? '0'),
        BigInt(r?.high ?? '0'),
      );
      if (decision.reason === 'behind-log-start' || decision.reason === 'beyond-log-end') {
        // The fence would otherwise skip (beyond the end) or refuse (behind the start) every record forever.
        await resetOffset(
          pool,
          { groupId: options.groupId, topic: options.topic, partition },
          decision.offset,
        );
        metrics.errors.inc({ processor: name, code: decision.reason, handling: 'offset-reset' });
        logger.warn(
          { processor: name, partition, stored: String(decision.stored), resumeAt: String(decision.offset) },
          decision.reason === 'beyond-log-end'
            ? 'stored offset is beyond the log end (topic recreated?): resuming from the log start'
            : 'records were deleted before they were applied: resuming from the log start',
        );
      }
      consumer.seek({ topic: options.topic, partition, offset: decision.offset.toString() });
    }
    logger.info(
      { processor: name, partitions, stored: Object.fromEntries(stored) },
      'sought to stored offsets',
    );
  }

  /** One transaction: fence on the stored offset, apply, write the outbox, store the next offset. */
  async function commitChunk(
    key: PartitionKey,
    messages: readonly KafkaMessage[],
    decoded: ReadonlyArray<T | undefined>,
  ): Promise<{ applied: number; outbox: number }> {
    const first = BigInt(messages[0]!.offset);
    const last = BigInt(messages[messages.length - 1]!.offset);
    return withTransaction(pool, async (client) => {
      const stored = await lockOffset(client, key, first);
      if (stored > last) return { applied: 0, outbox: 0 };
      if (stored < first) throw new GapError(stored);
      const fresh: T[] = [];
      messages.forEach((m, i) => {
        const value = decoded[i];
        if (BigInt(m.offset) >= stored && value !== undefined) fresh.push(value);
      });
      const result = fresh.length > 0 ? await handler.apply(client, fresh) : { outbox: [] };
      await writeOutbox(client, result.outbox);
      await storeOffset(client, key, last + 1n);
      metrics.skipped.inc({ processor: name }, Number(stored - first));
      return { applied: fresh.length, outbox: result.outbox.length };
    });
  }

  async function deadLetter(key: PartitionKey, message: KafkaMessage, error: PlatformError): Promise<void> {
    metrics.errors.inc({ processor: name, code: error.code, handling: 'dead-lettered' });
    logger.error(
      { err: error, processor: name, partition: key.partition, offset: message.offset },
      'dead-lettered',
    );
    await deps.deadLetter.send({
      processor: name,
      error,
      topic: key.topic,
      partition: key.partition,
      offset: message.offset,
      message,
    });
  }

  /**
   * Pipelined group commit (partitionsConsumedConcurrently > 1). eachBatch decodes its chunk, queues it and
   * returns, so kafkajs fetches the next records while a committer applies what is queued: each transaction
   * takes its lane's queued chunks (several partitions, several fetches) up to `maxBatch` records; lanes
   * (`committers`) own disjoint partitions, so their transactions never lock the same offset rows, and one key's
   * records (one partition) are committed in order by one lane. Returning before the
   * transaction loses nothing: the offset that counts is the one in PostgreSQL, moved only by that transaction;
   * a crash drops the queue and the restart resumes from the stored offsets, and a chunk fetched twice (after a
   * seek or a rebalance) is skipped by the offset fence. The queue holds at most 4 × `maxBatch` records
   * (eachBatch waits for room, heartbeating).
   */
  interface QueuedChunk {
    key: PartitionKey;
    messages: readonly KafkaMessage[];
    /** Undefined when a record did not decode: the chunk then takes the one-partition path (dead letters). */
    decoded: readonly T[] | undefined;
    highWatermark: string;
  }
  /** One queue and committer per lane; a partition always goes to lane `partition % committers`. */
  interface Lane {
    queue: QueuedChunk[];
    committer: Promise<void> | undefined;
  }
  const lanes: Lane[] = Array.from({ length: Math.max(1, options.committers) }, () => ({
    queue: [],
    committer: undefined,
  }));
  const laneOf = (partition: number): Lane => lanes[partition % lanes.length]!;
  let queuedRecords = 0;
  const roomWaiters = new Set<() => void>();
  const maxQueued = options.maxBatch * 4;

  function dequeue(lane: Lane, count: number): QueuedChunk[] {
    const taken = lane.queue.splice(0, count);
    for (const chunk of taken) queuedRecords -= chunk.messages.length;
    for (const wake of roomWaiters) wake();
    return taken;
  }

  /** One transaction for queued chunks of several partitions; returns where each partition with a gap stands. */
  async function commitGroup(chunks: readonly QueuedChunk[]): Promise<Map<number, bigint>> {
    const ordered = [...chunks].sort(
      (a, b) =>
        a.key.partition - b.key.partition ||
        Number(BigInt(a.messages[0]!.offset) - BigInt(b.messages[0]!.offset)),
    );
    const firstOffsets = new Map<number, bigint>();
    for (const c of ordered)
      if (!firstOffsets.has(c.key.partition))
        firstOffsets.set(c.key.partition, BigInt(c.messages[0]!.offset));
    const timer = metrics.batchSeconds.startTimer({ processor: name });
    const result = await withTransaction(pool, async (client) => {
      const position = await lockOffsets(client, options.groupId, options.topic, firstOffsets);
      const fresh: T[] = [];
      const next = new Map<number, bigint>();
      const gaps = new Map<number, bigint>();
      let skipped = 0n;
      for (const chunk of ordered) {
        const partition = chunk.key.partition;
        const first = BigInt(chunk.messages[0]!.offset);
        const last = BigInt(chunk.messages[chunk.messages.length - 1]!.offset);
        const at = position.get(partition)!;
        if (gaps.has(partition) || at > last) continue;
        if (at < first) {
          gaps.set(partition, at);
          continue;
        }
        chunk.messages.forEach((m, i) => {
          if (BigInt(m.offset) >= at) fresh.push(chunk.decoded![i]!);
        });
        skipped += at - first;
        position.set(partition, last + 1n);
        next.set(partition, last + 1n);
      }
      const effects = fresh.length > 0 ? await handler.apply(client, fresh) : { outbox: [] };
      await writeOutbox(client, effects.outbox);
      await storeOffsets(client, options.groupId, options.topic, next);
      metrics.skipped.inc({ processor: name }, Number(skipped));
      return { applied: fresh.length, outbox: effects.outbox.length, gaps };
    });
    timer();
    applied += result.applied;
    metrics.applied.inc({ processor: name }, result.applied);
    if (result.outbox > 0) deps.onOutbox?.();
    return result.gaps;
  }

  /** A gap (records before this chunk were never applied): drop the partition's queued chunks, fetch again. */
  function seekBack(partition: number, storedOffset: bigint, offset: string): void {
    logger.warn({ processor: name, partition, offset }, new GapError(storedOffset).message);
    const { queue } = laneOf(partition);
    for (let i = queue.length - 1; i >= 0; i--)
      if (queue[i]!.key.partition === partition) {
        queuedRecords -= queue[i]!.messages.length;
        queue.splice(i, 1);
      }
    try {
      consumer.seek({ topic: options.topic, partition, offset: storedOffset.toString() });
    } catch (error) {
      logger.warn({ err: error, processor: name, partition }, 'seek after a gap failed (partition revoked?)');
    }
  }

  /** The one-partition path for one queued chunk, with its retry rules; false when it was not committed. */
  async function commitAlone(chunk: QueuedChunk): Promise<boolean> {
    for (let attempt = 1; running; attempt++) {
      try {
        await processChunk(chunk.key, chunk.messages);
        return true;
      } catch (error) {
        if (error instanceof GapError) {
          seekBack(chunk.key.partition, error.storedOffset, chunk.messages[0]!.offset);
          return false;
        }
        await backOff(error, attempt);
      }
    }
    return false;
  }

  async function backOff(error: unknown, attempt: number): Promise<void> {
    const failure = toPlatformError(error, 'DB_UNAVAILABLE', true);
    metrics.errors.inc({ processor: name, code: failure.code, handling: 'retried' });
    const delay = backoffDelayMs(attempt, options.backoff, Math.random);
    logger.warn({ err: failure, processor: name, attempt, delay }, 'batch failed, backing off');
    await sleep(delay);
  }

  async function drainQueue(lane: Lane): Promise<void> {
    const { queue } = lane;
    while (queue.length > 0) {
      if (queue[0]!.decoded === undefined) {
        const [chunk] = dequeue(lane, 1);
        if (await commitAlone(chunk!)) afterCommit([chunk!], new Map());
        continue;
      }
      let count = 0;
      let size = 0;
      while (
        count < queue.length &&
        queue[count]!.decoded !== undefined &&
        (count === 0 || size + queue[count]!.messages.length <= options.maxBatch)
      )
        size += queue[count++]!.messages.length;
      const chunks = dequeue(lane, count);
      for (let attempt = 1; ; attempt++) {
        try {
          const gaps = await commitGroup(chunks);
          for (const [partition, stored] of gaps)
            seekBack(
              partition,
              stored,
              chunks.find((c) => c.key.partition === partition)!.messages[0]!.offset,
            );
          afterCommit(chunks, gaps);
          break;
        } catch (error) {
          const failure = toPlatformError(error, 'DB_UNAVAILABLE', isConnectionError(error));
          if (!failure.retriable) {
            // Not retriable: each chunk alone, record by record if need be, failing records dead-lettered.
            const committed: QueuedChunk[] = [];
            for (const chunk of chunks) if (await commitAlone(chunk)) committed.push(chunk);
            afterCommit(committed, new Map());
            break;
          }
          if (!running) return;
          await backOff(failure, attempt);
        }
      }
    }
  }

  function afterCommit(chunks: readonly QueuedChunk[], gaps: ReadonlyMap<number, bigint>): void {
    const commits = new Map<number, bigint>();
    for (const chunk of chunks) {
      if (gaps.has(chunk.key.partition)) continue;
      const last = BigInt(chunk.messages[chunk.messages.length - 1]!.offset);
      metrics.processed.inc({ processor: name }, chunk.messages.length);
      metrics.lag.set(
        { processor: name, topic: options.topic, partition: String(chunk.key.partition) },
        Math.max(0, Number(BigInt(chunk.highWatermark) - last - 1n)),
      );
      commits.set(chunk.key.partition, last + 1n);
    }
    if (commits.size === 0) return;
    // Informational: PostgreSQL holds the offset that counts. Not awaited: the next transaction need not wait.
    consumer
      .commitOffsets(
        [...commits].map(([partition, offset]) => ({
          topic: options.topic,
          partition,
          offset: String(offset),
        })),
      )
      .catch((error: unknown) => logger.debug({ err: error }, 'informational Kafka commit failed'));
  }

  function startCommitter(lane: Lane): void {
    if (lane.committer) return;
    // setImmediate: the other partitions of the same fetch, decoding concurrently, join the first transaction.
    lane.committer = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => drainQueue(lane))
      .catch((error: unknown) => logger.error({ err: error, processor: name }, 'committer failed'))
      .finally(() => {
        lane.committer = undefined;
        if (lane.queue.length > 0 && running) startCommitter(lane);
      });
  }

  async function enqueue(
    key: PartitionKey,
    messages: readonly KafkaMessage[],
    highWatermark: string,
    alive: () => boolean,
    heartbeat: () => Promise<void>,
  ): Promise<boolean> {
    let decoded: T[] | undefined = [];
    for (const message of messages) {
      try {
        decoded.push(await handler.decode(message));
      } catch {
        decoded = undefined;
        break;
      }
    }
    while (queuedRecords >= maxQueued && alive()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1_000);
        function done() {
          clearTimeout(timer);
          roomWaiters.delete(done);
          resolve();
        }
        roomWaiters.add(done);
      });
      // Thrown (a rebalance): kafkajs rejoins; this chunk was not queued and is fetched again.
      await heartbeat();
    }
    if (!alive()) return false;
    const lane = laneOf(key.partition);
    lane.queue.push({ key, messages, decoded, highWatermark });
    queuedRecords += messages.length;
    startCommitter(lane);
    return true;
  }

  /** Decodes, dead-letters undecodable records, applies; on a non-retriable apply error, one record at a time. */
  async function processChunk(key: PartitionKey, messages: readonly KafkaMessage[]): Promise<void> {
    const decoded: Array<T | undefined> = [];
    for (const message of messages) {
      try {
        decoded.push(await handler.decode(message));
      } catch (error) {
        const failure = toPlatformError(error, 'DECODE_FAILED');
        if (failure.retriable) throw failure;
        await deadLetter(key, message, failure);
        decoded.push(undefined);
      }
    }
    try {
      const result = await commitChunk(key, messages, decoded);
      applied += result.applied;
      metrics.applied.inc({ processor: name }, result.applied);
      if (result.outbox > 0) deps.onOutbox?.();
    } catch (error) {
      if (error instanceof GapError) throw error;
      const failure = toPlatformError(error, 'DB_UNAVAILABLE', isConnectionError(error));
      if (failure.retriable || messages.length === 1) {
        if (failure.retriable) throw failure;
        await deadLetter(key, messages[0]!, failure);
        await commitChunk(key, messages, [undefined]);
        return;
      }
      for (let i = 0; i < messages.length; i++) await processChunk(key, [messages[i]!]);
    }
  }

  const grouped = options.partitionsConsumedConcurrently > 1;
  const runConfig: ConsumerRunConfig = {
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently,
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const key: PartitionKey = { groupId: options.groupId, topic: batch.topic, partition: batch.partition };
      if (grouped) {
        const alive = () => running && isRunning() && !isStale();
        for (let start = 0; start < batch.messages.length && alive(); start += options.maxBatch) {
          const chunk = batch.messages.slice(start, start + options.maxBatch);
          if (!(await enqueue(key, chunk, batch.highWatermark, alive, heartbeat))) return;
          resolveOffset(chunk[chunk.length - 1]!.offset);
        }
        // No heartbeat here: kafkajs sends one after each batch and rejoins on a rebalance. A heartbeat here,
        // with batches returning this fast, would take the interval's slot and swallow the rebalance notice.
        return;
      }
      for (let start = 0; start < batch.messages.length; start += options.maxBatch) {
        const chunk = batch.messages.slice(start, start + options.maxBatch);
        const last = chunk[chunk.length - 1]!;
        for (let attempt = 1; ; attempt++) {
          if (!running || !isRunning() || isStale()) return;
          const timer = metrics.batchSeconds.startTimer({ processor: name });
          try {
            await processChunk(key, chunk);
            timer();
            break;
          } catch (error) {
            if (error instanceof GapError) {
              logger.warn(
                { processor: name, partition: batch.partition, offset: chunk[0]!.offset },
                error.message,
              );
              consumer.seek({
                topic: batch.topic,
                partition: batch.partition,
                offset: error.storedOffset.toString(),
              });
              return;
            }
            const failure = toPlatformError(error, 'DB_UNAVAILABLE', true);
            metrics.errors.inc({ processor: name, code: failure.code, handling: 'retried' });
            const delay = backoffDelayMs(attempt, options.backoff, Math.random);
            logger.warn({ err: failure, processor: name, attempt, delay }, 'batch failed, backing off');
            await sleep(delay);
            await heartbeat().catch(() => undefined);
          }
        }
        metrics.processed.inc({ processor: name }, chunk.length);
        resolveOffset(last.offset);
        metrics.lag.set(
          { processor: name, topic: batch.topic, partition: String(batch.partition) },
          Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n)),
        );
        // Informational: PostgreSQL holds the offset that counts. A failed commit (rebalance) changes nothing.
        await consumer
          .commitOffsets([
            { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
          ])
          .catch((error: unknown) => logger.debug({ err: error }, 'informational Kafka commit failed'));
        await heartbeat().catch(() => undefined);
      }
    },
  };

  async function runConsumer(target: Consumer): Promise<void> {
    await target.connect();
    await target.subscribe({ topics: [options.topic], fromBeginning: true });
    await target.run(runConfig);
  }

  await admin.connect();
  await runConsumer(consumer);
  logger.info({ processor: name, topic: options.topic, groupId: options.groupId }, 'processor consuming');

  return {
    applied: () => applied,
    assigned: () => assigned,
    async stop() {
      running = false;
      clearTimeout(restartTimer);
      for (const wake of roomWaiters) wake();
      // Disconnect waits for the batch in flight (its transaction commits or rolls back), then leaves the group;
      // in pipelined mode the committer then commits what is queued (a retriable failure abandons it: stored
      // offsets in PostgreSQL say where the next instance resumes).
      const drained = (async () => {
        await restarting?.catch(() => undefined);
        await consumer.disconnect();
        for (const lane of lanes) while (lane.committer) await lane.committer;
        await admin.disconnect();
      })();
      const timeout = new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), options.drainMs).unref(),
      );
      if ((await Promise.race([drained, timeout])) === 'timeout')
        logger.error({ processor: name, drainMs: options.drainMs }, 'processor did not drain in time');
    },
  };
}

function isConnectionError(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  // Connection failures, admin shutdown, serialization failures and deadlocks are worth retrying; constraint
  // violations and bugs are not (they would fail the same way forever).
  if (typeof code === 'string')
    return (
      code.startsWith('08') ||
      code.startsWith('57') ||
      code === '40001' ||
      code === '40P01' ||
      code === '53300' ||
      code === 'ECONNREFUSED' ||
      code === 'ECONNRESET'
    );
  return typeof message === 'string' && /connection|timeout|terminated/i.test(message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
