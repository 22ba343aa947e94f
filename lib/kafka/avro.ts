import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Config } from '../config.js';
import { PlatformError } from '../errors.js';

/**
 * Avro values in the Confluent wire format (magic byte 0, 4-byte schema id, Avro binary). The writer's schema
 * is registered under `<topic>-value` (TopicNameStrategy) once at start; readers resolve any id through the
 * registry, so data teams' standard deserializers read our topics as they are.
 */
export interface AvroSerde<T> {
  readonly schemaId: number;
  encode(value: T): Promise<Buffer>;
}

export function createSchemaRegistry(config: Config['schemaRegistry']): SchemaRegistry {
  return new SchemaRegistry({ host: config.url, ...(config.auth ? { auth: { ...config.auth } } : {}) });
}

export async function registerValueSchema<T>(
  registry: SchemaRegistry,
  topic: string,
  schemaText: string,
): Promise<AvroSerde<T>> {
  let schemaId: number;
  try {
    ({ id: schemaId } = await registry.register(
      { type: SchemaType.AVRO, schema: schemaText },
      { subject: `${topic}-value` },
    ));
  } catch (error) {
    throw new PlatformError('SCHEMA_REGISTRY_UNAVAILABLE', `registering ${topic}-value failed`, {
      cause: error,
      retriable: true,
    });
  }
  return {
    schemaId,
    async encode(value: T) {
      try {
        return await registry.encode(schemaId, value);
      } catch (error) {
        throw new PlatformError('ENCODE_FAILED', `value does not match ${topic}-value schema ${schemaId}`, {
          cause: error,
        });
      }
    },
  };
}

/** Decodes any Confluent-framed Avro value; the schema is fetched by id and cached by the client. */
export async function decodeAvro<T>(registry: SchemaRegistry, buffer: Buffer): Promise<T> {
  return (await registry.decode(buffer)) as T;
}
