import type { Producer } from 'kafkajs';
import type { AvroSerde } from '../../lib/kafka/avro.js';
import type { DeadLetterRecord } from '../../schemas/avro/records.js';
import { stableId } from '../shared/stable-id.js';
import type { DeadLetterSink } from './processor.js';

/**
 * Dead letters of the processors, on the platform's dead-letter topic (dead-letter.avsc) with the original
 * bytes, so a record can be replayed once fixed. Headers: `error-code` (a code from lib/errors.ts), `processor`,
 * `origin` (topic/partition/offset). The event id is derived from the origin: a repeat has the same id.
 */
export function kafkaDeadLetterSink(
  producer: Producer,
  topic: string,
  serde: AvroSerde<DeadLetterRecord>,
): DeadLetterSink {
  return {
    async send({ processor, error, topic: sourceTopic, partition, offset, message }) {
      const origin = `${sourceTopic}/${partition}/${offset}`;
      const value = await serde.encode({
        eventId: stableId('dead-letter', processor, origin),
        tenantId: null,
        devEui: null,
        source: processor,
        errorCode: error.code,
        reason: error.message,
        receivedAt: Date.now(),
        contentType: 'avro/binary',
        origin,
        original: message.value ?? Buffer.alloc(0),
      });
      await producer.send({
        topic,
        acks: -1,
        messages: [
          {
            key: message.key ?? processor,
            value,
            headers: { 'error-code': error.code, processor, origin },
          },
        ],
      });
    },
  };
}
