import { describe, expect, it } from 'vitest';
import { isPlatformError } from './errors.js';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('defaults to the local stack, built from the same port variables as infra/env.sh', () => {
    const config = loadConfig({
      KAFKA_PORT: '60092',
      MQTT_PORT: '61883',
      SCHEMA_REGISTRY_PORT: '60081',
      PG_PORT: '60432',
    });
    expect(config.kafka.brokers).toEqual(['127.0.0.1:60092']);
    expect(config.mqtt.url).toBe('mqtt://127.0.0.1:61883');
    expect(config.schemaRegistry.url).toBe('http://127.0.0.1:60081');
    expect(config.postgres.apiUrl).toBe('postgres://parking_api:parking-api-dev@127.0.0.1:60432/parking');
  });

  it('takes explicit URLs for real services over the local defaults', () => {
    const config = loadConfig({
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      PG_API_URL: 'postgres://api@db/parking',
    });
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(config.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(config.postgres.apiUrl).toBe('postgres://api@db/parking');
  });

  it('refuses an invalid value with CONFIG_INVALID naming the variable, and returns a frozen object', () => {
    let thrown: unknown;
    try {
      loadConfig({ API_PORT: 'eighty' });
    } catch (error) {
      thrown = error;
    }
    expect(isPlatformError(thrown, 'CONFIG_INVALID')).toBe(true);
    expect((thrown as Error).message).toContain('API_PORT');
    expect(Object.isFrozen(loadConfig({}).kafka.brokers)).toBe(true);
  });
});
