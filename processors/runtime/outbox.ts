import type { Producer } from 'kafkajs';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type { ProcessorMetrics } from './metrics.js';
import { markOutboxSent, startRelayLoop } from './relay-loop.js';

/**
 * The transactional outbox. A processor writes the events that leave the database into `outbox` in the same
 * transaction as its results and offsets (writeOutbox); the relay publishes unsent rows to Kafka in `seq` order
 * and marks them sent.
 *
 * Promises:
 * - An event is published at least once, after the transaction that produced it committed; never before.
 * - Repeats (a relay crash between the broker's ack and the mark) carry the same `id`, in the `event-id` header
 *   and in the record itself: consumers drop repeats by it.
 * - Order: rows are published in `seq` order by one relay at a time (a transaction-scoped advisory lock), so two
 *   events with the same key reach the same partition in the order their transactions committed — processors
 *   lock the entity row (e.g. the space) before writing, so one key's rows are inserted in commit order.
 */
export interface OutboxMessage {
  tenantId: string;
  /** The event's stable id (stableId): the same inputs always give the same id. */
  id: string;
  /** When the event happened, epoch ms (deterministic; part of the key). */
  time: number;
  topic: string;
  key: string;
  value: Buffer;
  headers?: Record<string, string>;
}

/** One named statement for the whole batch; a replayed insert of the same (tenant, id, time) does nothing. */
export async function writeOutbox(client: PoolClient, messages: readonly OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await client.query({
    name: 'outbox-write',
    text: `INSERT INTO outbox (tenant_id, time, id, topic, key, value, headers)
     SELECT t, to_timestamp(tm / 1000.0), i, tp, k, v, h
       FROM unnest($1::uuid[], $2::float8[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::jsonb[])
            WITH ORDINALITY AS m(t, tm, i, tp, k, v, h, n)
      ORDER BY n
     ON CONFLICT DO NOTHING`,
    values: [
      messages.map((m) => m.tenantId),
      messages.map((m) => m.time),
      messages.map((m) => m.id),
      messages.map((m) => m.topic),
      messages.map((m) => m.key),
      messages.map((m) => m.value),
      messages.map((m) => JSON.stringify(m.headers ?? {})),
    ],
  });
}

export interface OutboxRelayDeps {
  pool: Pool;
  /** An idempotent producer (kafkajs `idempotent: true`, one request in flight keeps order on retries). */
  producer: Producer;
  logger: Logger;
  metrics: ProcessorMetrics;
  /**
   * The topics this relay publishes. Scoped so that rows for a topic another service owns (or one that does not
   * exist yet) cannot block this processor's events.
   */
  topics: readonly string[];
  /** Rows published per transaction. */
  batchSize?: number;
  /** Poll interval when idle, ms; `kick()` wakes the relay earlier (the runtime kicks after each commit). */
  idleMs?: number;
}

export interface OutboxRelay extends Service {
  kick(): void;
  /** Publishes one batch now; returns the number of rows sent (0 when another relay holds the lock). */
  relayOnce(): Promise<number>;
}

/** Any constant shared by all relays: only one publishes at a time, so `seq` order holds across instances. */
const relayLockKey = 0x6f7574626f78; // "outbox"

export async function startOutboxRelay(deps: OutboxRelayDeps): Promise<OutboxRelay> {
  const batchSize = deps.batchSize ?? 1_000;
  const idleMs = deps.idleMs ?? 100;
  async function relayOnce(): Promise<number> {
    return withTransaction(deps.pool, async (client) => {
      const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
        relayLockKey,
      ]);
      if (!lock.rows[0]?.ok) return 0;
      const { rows } = await client.query<{
        tenant_id: string;
        id: string;
        time: Date;
        topic: string;
        key: string;
        value: Buffer;
        headers: Record<string, string>;
      }>(
        `SELECT tenant_id, id, time, topic, key, value, headers FROM outbox
          WHERE sent_at IS NULL AND topic = ANY($2::text[]) ORDER BY seq LIMIT $1`,
        [batchSize, [...deps.topics]],
      );
      if (rows.length === 0) return 0;
      const byTopic = new Map<
        string,
        Array<{ key: string; value: Buffer; headers: Record<string, string> }>
      >();
      for (const row of rows) {
        const messages = byTopic.get(row.topic) ?? [];
        messages.push({
          key: row.key,
          value: row.value,
          headers: { ...row.headers, 'event-id': row.id, 'tenant-id': row.tenant_id },
        });
        byTopic.set(row.topic, messages);
      }
      await deps.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      await markOutboxSent(client, rows);
      for (const [topic, messages] of byTopic) deps.metrics.outboxSent.inc({ topic }, messages.length);
      return rows.length;
    });
  }

  const loop = startRelayLoop({
    name: 'outbox-relay',
    failureCode: 'KAFKA_UNAVAILABLE',
    relayOnce,
    batchSize,
    idleMs,
    logger: deps.logger,
    metrics: deps.metrics,
  });

  return { kick: loop.kick, relayOnce, stop: loop.stop };
}
