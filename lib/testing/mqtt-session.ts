import mqtt from 'mqtt';

/**
 * Ends a persistent MQTT session (the bridge subscribes with clean=false): connecting once with a clean session
 * discards it and its queue. Tests and benchmarks call it for the bridge client ids they used, since the local
 * Mosquitto keeps queueing, without bound, every later run's messages for a session left behind.
 */
export async function discardMqttSessions(url: string, clientIds: readonly string[]): Promise<void> {
  for (const clientId of clientIds)
    await (await mqtt.connectAsync(url, { clientId, clean: true })).endAsync();
}
