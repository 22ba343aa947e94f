import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

/**
 * One kafkajs client per service, configured only from Config, so the same code runs against the local mock
 * broker and a real (TLS/SASL) Kafka cluster. kafkajs' own logs are routed into the service's pino logger.
 */
export function createKafka(config: Config['kafka'], logger: Logger, clientId = config.clientId): Kafka {
  const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
    [logLevel.ERROR]: 'error',
    [logLevel.WARN]: 'warn',
    [logLevel.INFO]: 'info',
    [logLevel.DEBUG]: 'debug',
  };
  const kafkaConfig: KafkaConfig = {
    clientId,
    brokers: [...config.brokers],
    ssl: config.ssl,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, ...rest } = log;
        logger[levels[level] ?? 'info']({ kafka: rest }, message);
      },
  };
  if (config.sasl) kafkaConfig.sasl = { ...config.sasl } as SASLOptions;
  return new Kafka(kafkaConfig);
}
