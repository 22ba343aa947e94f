import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/lifecycle.js';
import type { Bridge } from './bridge.js';
import { parseEventTopic } from './chirpstack/mqtt-topic.js';

/**
 * Subscribes to ChirpStack's MQTT integration with a persistent session (clean=false, fixed client id) at
 * QoS 1, and acknowledges each message (PUBACK) only after the bridge has made it durable in Kafka. If the
 * bridge fails retriably, the message is left unacknowledged; the broker redelivers it on the next session.
 */
export async function startMqttSource(
  config: Config['mqtt'],
  bridge: Bridge,
  logger: Logger,
): Promise<Service & { client: MqttClient }> {
  const options: IClientOptions = {
    clientId: config.clientId,
    clean: false,
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
    ...(config.username ? { username: config.username, password: config.password } : {}),
  };
  const client = mqtt.connect(config.url, options);
  // mqtt.js sends the PUBACK when this callback is called: delaying it until Kafka acknowledged is the
  // at-least-once hand-over. A retriable failure disconnects so the unacknowledged message is redelivered.
  client.handleMessage = (packet, done) => {
    const topic = packet.topic;
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const parsed = parseEventTopic(topic);
    bridge
      .handle(
        {
          source: 'MQTT',
          eventType: parsed?.eventType ?? 'unknown',
          origin: topic,
          contentType: 'application/json',
          body,
          receivedAt: Date.now(),
        },
        parsed?.devEui ?? null,
      )
      .then(
        () => done(),
        (error: unknown) => {
          logger.error({ err: error, topic }, 'event not acknowledged; reconnecting for redelivery');
          client.stream.destroy();
        },
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
  logger.info({ url: config.url, topic: config.eventTopic }, 'mqtt source subscribed');
  return {
    client,
    async stop() {
      await client.endAsync();
    },
  };
}
