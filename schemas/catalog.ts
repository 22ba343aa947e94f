import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The topic catalog (schemas/topics.json): the one list of topics, read by infra and provisioning alike. */
const topicSchema = z.object({
  name: z.string().regex(/^[a-zA-Z0-9._-]+$/),
  partitions: z.number().int().min(1),
  replicationFactor: z.number().int().min(1),
  key: z.string(),
  valueSchema: z.string(),
  retentionMs: z.number().int().min(-1),
  meaning: z.string(),
});
const catalogSchema = z.object({ topics: z.array(topicSchema).min(1) });

export type TopicSpec = z.infer<typeof topicSchema>;

const root = fileURLToPath(new URL('..', import.meta.url));

export function loadTopicCatalog(): TopicSpec[] {
  const raw: unknown = JSON.parse(readFileSync(new URL('./topics.json', import.meta.url), 'utf8'));
  return catalogSchema.parse(raw).topics;
}

/** The Avro schema text (JSON) of a catalog topic's value. */
export function readValueSchema(topic: TopicSpec): string {
  return readFileSync(`${root}/${topic.valueSchema}`, 'utf8');
}

export type AvroSchemaFile =
  | 'uplink'
  | 'join'
  | 'device-status'
  | 'device-location'
  | 'downlink-outcome'
  | 'orphan-uplink'
  | 'dead-letter'
  | 'occupancy-change'
  | 'liveness-alert'
  | 'reservation-event';

/** The Avro schema text (JSON) of `schemas/avro/<file>.avsc`. */
export function readAvroSchema(file: AvroSchemaFile): string {
  return readFileSync(new URL(`./avro/${file}.avsc`, import.meta.url), 'utf8');
}
