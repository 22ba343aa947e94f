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
  /** The same bytes as `encode`, synchronously (the writer's schema is compiled once, at registration). */
  encodeSync(value: T): Buffer;
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
  // The compiled writer's schema, fetched once: encoding then needs no registry lookup and no promise per value.
  let schema: Awaited<ReturnType<SchemaRegistry['getSchema']>>;
  try {
    schema = await registry.getSchema(schemaId);
  } catch (error) {
    throw new PlatformError(
      'SCHEMA_REGISTRY_UNAVAILABLE',
      `reading ${topic}-value schema ${schemaId} failed`,
      {
        cause: error,
        retriable: true,
      },
    );
  }
  const encodeSync = (value: T): Buffer => {
    let body: Buffer;
    try {
      body = schema.toBuffer(value as object);
    } catch (error) {
      throw new PlatformError('ENCODE_FAILED', `value does not match ${topic}-value schema ${schemaId}`, {
        cause: error,
      });
    }
    // Confluent wire format: magic byte 0, the schema id as a big-endian int32, then the Avro binary.
    const framed = Buffer.allocUnsafe(5 + body.length);
    framed[0] = 0;
    framed.writeInt32BE(schemaId, 1);
    body.copy(framed, 5);
    return framed;
  };
  return {
    schemaId,
    encodeSync,
    encode: async (value: T) => encodeSync(value),
  };
}

/** Decodes any Confluent-framed Avro value; the schema is fetched by id and cached by the client. */
export async function decodeAvro<T>(registry: SchemaRegistry, buffer: Buffer): Promise<T> {
  return (await registry.decode(buffer)) as T;
}
