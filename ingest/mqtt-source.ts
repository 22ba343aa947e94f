import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/lifecycle.js';
import { OrderedAckWindow } from './ack-window.js';
import type { Bridge } from './bridge.js';
import { parseEventTopic } from './chirpstack/mqtt-topic.js';
import type { IngestMetrics } from './metrics.js';

export interface MqttSourceOptions {
  /** Messages received and not yet acknowledged at most; the next one is read only when one is acknowledged. */
  maxInFlight: number;
}

/**
 * The part of mqtt.js' client this source relies on beyond its public API (pinned mqtt 5.16.0): `_sendPacket`
 * writes a packet on the current connection.
 */
interface PacketWriter {
  _sendPacket(packet: { cmd: 'puback'; messageId: number }, callback: (error?: Error) => void): void;
}

/**
 * Tells mqtt.js not to send the PUBACK itself. In mqtt.js 5 (handlers/publish.js), the handleMessage callback
 * called with an error skips the PUBACK, and the connection's packet loop moves on to the next packet; we send
 * the PUBACK ourselves once Kafka acknowledged the record.
 */
const pubackDeferred = new Error('PUBACK deferred until the record is durable in Kafka');

/**
 * Subscribes to ChirpStack's MQTT integration with a persistent session (clean=false, fixed client id) at QoS 1.
 *
 * Acknowledgement contract: a message's PUBACK is sent only after the bridge made it durable in Kafka (or it is a
 * duplicate of one that is), never before; PUBACKs go out in arrival order, as MQTT requires. Up to
 * `maxInFlight` messages are processed concurrently (so the Kafka sink can batch them); when the window is full
 * the source stops reading the connection, and the broker queues for the session (backpressure). If the bridge
 * fails retriably, the connection is dropped: the broker redelivers every unacknowledged message on the next
 * session, and PUBACKs of messages from the dropped connection are never sent on a new one.
 */
export async function startMqttSource(
  config: Config['mqtt'],
  bridge: Bridge,
  logger: Logger,
  metrics: IngestMetrics,
  options: MqttSourceOptions = { maxInFlight: 256 },
): Promise<Service & { client: MqttClient }> {
  const clientOptions: IClientOptions = {
    clientId: config.clientId,
    clean: false,
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
    ...(config.username ? { username: config.username, password: config.password } : {}),
  };
  const client = mqtt.connect(config.url, clientOptions);
  const window = new OrderedAckWindow(options.maxInFlight);
  let draining = false;
  metrics.setInFlight(() => window.size);

  const puback = (stream: unknown, messageId: number | undefined) => {
    // A PUBACK belongs to the connection the PUBLISH came on; after a reconnect the broker redelivers instead.
    if (messageId === undefined || client.stream !== stream || !client.connected) return;
    (client as unknown as PacketWriter)._sendPacket({ cmd: 'puback', messageId }, () => {});
  };

  const receive = (packet: IPublishPacket, callback: (error?: Error) => void) => {
    const stream = client.stream;
    const parsed = parseEventTopic(packet.topic);
    const work = bridge.handle(
      {
        source: 'MQTT',
        eventType: parsed?.eventType ?? 'unknown',
        origin: packet.topic,
        body: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        receivedAt: Date.now(),
      },
      { devEuiHint: parsed?.devEui ?? null },
    );
    if (packet.qos === 0) {
      // Nothing to acknowledge at QoS 0 (the broker downgraded it): still handled, but not at-least-once.
      work.catch((error: unknown) => logger.error({ err: error, topic: packet.topic }, 'QoS 0 event failed'));
      callback();
      return;
    }
    window.add(
      work,
      () => puback(stream, packet.messageId),
      (error) => {
        logger.error(
          { err: error, topic: packet.topic },
          'event not acknowledged; reconnecting for redelivery',
        );
        if (client.stream === stream) stream.destroy();
      },
    );
    callback(pubackDeferred);
  };

  client.handleMessage = (packet, callback) => {
    // While draining, new messages stay unacknowledged: the persistent session redelivers them later.
    if (draining) return callback(pubackDeferred);
    if (!window.full) return receive(packet, callback);
    window.waitForSpace().then(
      () => (draining ? callback(pubackDeferred) : receive(packet, callback)),
      () => callback(pubackDeferred),
    );
  };
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  client.removeAllListeners('error');
  client.on('error', (error) => logger.error({ err: error }, 'mqtt client error'));
  client.on('offline', () => logger.warn('mqtt broker unreachable, reconnecting'));
  await client.subscribeAsync(config.eventTopic, { qos: 1 });
  logger.info(
    { url: config.url, topic: config.eventTopic, maxInFlight: options.maxInFlight },
    'mqtt source subscribed',
  );
  return {
    client,
    async stop() {
      draining = true;
      await window.drained();
      await client.endAsync();
    },
  };
}
