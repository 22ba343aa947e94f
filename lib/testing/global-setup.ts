import { createConnection } from 'node:net';
import { loadConfig } from '../config.js';
import { migrate, setRolePassword } from '../../schemas/migrate.js';
import { localPasswords } from '../config.js';

/**
 * Integration tests run against the real local services. This checks each one answers (failing fast with the
 * command that starts them) and applies the migrations, as `infra/stack.sh up` does.
 */
async function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

export default async function setup(): Promise<void> {
  const config = loadConfig();
  const url = (u: string) => new URL(u);
  const pgUrl = url(config.postgres.migrateUrl);
  const [kafkaHost, kafkaPort] = (config.kafka.brokers[0] ?? '127.0.0.1:29092').split(':');
  const checks: Array<[string, string, number]> = [
    ['PostgreSQL', pgUrl.hostname, Number(pgUrl.port)],
    ['Redis', url(config.redisUrl).hostname, Number(url(config.redisUrl).port)],
    ['MQTT', url(config.mqtt.url).hostname, Number(url(config.mqtt.url).port)],
    ['Kafka', kafkaHost ?? '127.0.0.1', Number(kafkaPort)],
    ['Schema Registry', url(config.schemaRegistry.url).hostname, Number(url(config.schemaRegistry.url).port)],
  ];
  const missing: string[] = [];
  for (const [name, host, port] of checks)
    if (!(await reachable(host, port))) missing.push(`${name} (${host}:${port})`);
  if (missing.length > 0) {
    throw new Error(
      `integration tests need the local stack; not reachable: ${missing.join(', ')}. Start it with: npm run stack up`,
    );
  }
  await migrate(config.postgres.migrateUrl, 'up');
  await setRolePassword(
    config.postgres.migrateUrl,
    'parking_api',
    config.postgres.rolePasswords.api ?? localPasswords.api,
  );
  await setRolePassword(
    config.postgres.migrateUrl,
    'parking_pipeline',
    config.postgres.rolePasswords.pipeline ?? localPasswords.pipeline,
  );
}
