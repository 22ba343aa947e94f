import type { Pool } from '../../lib/db/pool.js';
import { withTransaction } from '../../lib/db/tenant.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import type { ProcessorMetrics } from './metrics.js';
import { markOutboxSent, startRelayLoop } from './relay-loop.js';

/**
 * The outbox relay for MQTT: rows whose topic is `mqtt:<MQTT topic>` (written with writeOutbox in the
 * transaction that decided to send, e.g. a downlink) are published at QoS 1 in `seq` order and marked sent.
 * The Kafka relay never sees them (it selects its own topic names).
 *
 * Promises: published at least once, only after the producing transaction committed; a row is marked sent only
 * after the broker's PUBACK; one MQTT relay publishes at a time (its own advisory lock), so one device's
 * commands leave in the order they were decided. A repeat carries the same body (ChirpStack keys the queue item
 * by the `id` in it).
 */
export const mqttOutboxPrefix = 'mqtt:';

/** The narrow part of an mqtt.js client the relay needs. */
export interface MqttPublisher {
  publishAsync(topic: string, message: Buffer, options: { qos: 1 }): Promise<unknown>;
}

export interface MqttOutboxRelayDeps {
  pool: Pool;
  mqtt: MqttPublisher;
  logger: Logger;
  metrics: ProcessorMetrics;
  batchSize?: number;
  idleMs?: number;
}

export interface MqttOutboxRelay extends Service {
  kick(): void;
  relayOnce(): Promise<number>;
}

const relayLockKey = 0x6d7174746f7574; // "mqttout"

export async function startMqttOutboxRelay(deps: MqttOutboxRelayDeps): Promise<MqttOutboxRelay> {
  const batchSize = deps.batchSize ?? 100;
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
        value: Buffer;
      }>(
        `SELECT tenant_id, id, time, topic, value FROM outbox
          WHERE sent_at IS NULL AND starts_with(topic, $2) ORDER BY seq LIMIT $1`,
        [batchSize, mqttOutboxPrefix],
      );
      if (rows.length === 0) return 0;
      // One at a time: QoS 1 PUBACKs are quick on a local broker, and order per device must hold.
      for (const row of rows)
        await withTimeout(
          deps.mqtt.publishAsync(row.topic.slice(mqttOutboxPrefix.length), row.value, { qos: 1 }),
          publishTimeoutMs,
        );
      await markOutboxSent(client, rows);
      deps.metrics.outboxSent.inc({ topic: 'mqtt:command/down' }, rows.length);
      return rows.length;
    });
  }

  const loop = startRelayLoop({
    name: 'mqtt-outbox-relay',
    failureCode: 'MQTT_UNAVAILABLE',
    relayOnce,
    batchSize,
    idleMs,
    logger: deps.logger,
    metrics: deps.metrics,
  });

  return { kick: loop.kick, relayOnce, stop: loop.stop };
}

/** mqtt.js keeps a QoS 1 publish pending while disconnected: bound it so the transaction does not stay open. */
const publishTimeoutMs = 10_000;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`MQTT publish not acknowledged within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
