import type { Pool, PoolClient } from '../lib/db/pool.js';
import type { Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';

/** Channels notified by the triggers of schemas/sql/1732700000000_ingest.sql, with their payloads. */
export const changeChannels = {
  /** Payload: the DevEUI whose assignment (tenant, space, codec, status) changed. */
  sensorDevices: 'sensor_devices_changed',
  /** Payload: the tenant id whose webhook secrets changed (created, rotated, revoked). */
  webhookSecrets: 'webhook_secrets_changed',
  /** Payload: the ChirpStack application id whose tenant changed. */
  chirpstackApplications: 'chirpstack_applications_changed',
} as const;

export type ChangeChannel = (typeof changeChannels)[keyof typeof changeChannels];

export interface ChangeListenerOptions {
  /** Wait before reconnecting after the connection failed, ms. */
  reconnectMs?: number;
}

/**
 * Holds one pool connection for PostgreSQL LISTEN and calls `handlers[channel](payload)` for each notification.
 *
 * Contract: notifications are only delivered while connected, so `onReset` is called every time LISTEN is
 * (re-)established: the caller must drop everything it cached, because a change made while the connection was
 * away was never announced. `ready()` is true while listening. `stop` releases the connection.
 */
export async function startChangeListener(
  pool: Pool,
  handlers: Partial<Record<ChangeChannel, (payload: string) => void>>,
  onReset: () => void,
  logger: Logger,
  options: ChangeListenerOptions = {},
): Promise<Service & { ready(): boolean }> {
  const reconnectMs = options.reconnectMs ?? 1_000;
  let client: PoolClient | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const onNotification = (message: { channel: string; payload?: string | undefined }) => {
    const handler = handlers[message.channel as ChangeChannel];
    if (handler && message.payload !== undefined) handler(message.payload);
  };

  const connect = async (): Promise<void> => {
    const next = await pool.connect();
    const lost = (error?: Error) => {
      if (client !== next) return;
      client = undefined;
      next.removeListener('notification', onNotification);
      next.release(error ?? new Error('listener connection ended'));
      if (stopped) return;
      logger.warn({ err: error }, 'change listener lost its connection; reconnecting');
      timer = setTimeout(retry, reconnectMs);
    };
    next.on('error', lost);
    next.on('end', () => lost());
    next.on('notification', onNotification);
    try {
      for (const channel of Object.keys(handlers)) {
        // Channel names are constants of this module, never input; quoted as identifiers anyway.
        await next.query(`LISTEN ${next.escapeIdentifier(channel)}`);
      }
    } catch (error) {
      next.removeListener('notification', onNotification);
      next.release(error as Error);
      throw error;
    }
    client = next;
    onReset();
  };

  const retry = () => {
    timer = undefined;
    if (stopped) return;
    connect().catch((error: unknown) => {
      logger.warn({ err: error }, 'change listener could not connect; retrying');
      if (!stopped) timer = setTimeout(retry, reconnectMs);
    });
  };

  await connect();
  return {
    ready: () => client !== undefined,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = undefined;
      if (current) {
        current.removeListener('notification', onNotification);
        await current.query('UNLISTEN *').catch(() => undefined);
        current.release();
      }
    },
  };
}
