import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { KafkaMessage } from 'kafkajs';
import { PlatformError } from '../../lib/errors.js';
import { decodeAvro } from '../../lib/kafka/avro.js';

/**
 * A processor handler's `decode` for Confluent-framed Avro values. Failures are DECODE_FAILED (non-retriable), so
 * the runtime dead-letters the record instead of stalling its partition. `what` names the expected record.
 */
export function avroDecoder<T>(registry: SchemaRegistry, what: string) {
  return async (message: KafkaMessage): Promise<T> => {
    if (!message.value) throw new PlatformError('DECODE_FAILED', 'record without a value');
    try {
      return await decodeAvro<T>(registry, message.value);
    } catch (error) {
      throw new PlatformError('DECODE_FAILED', `not ${what}`, { cause: error });
    }
  };
}
