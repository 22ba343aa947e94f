import { createHash } from 'node:crypto';

/** Namespace of the name-based ids this platform derives for ChirpStack events that carry none. */
const namespace = Buffer.from('6f1d2c1e9a3b4c5d8e7f10213243a5b6', 'hex');

/**
 * A name-based UUID (RFC 9562 version 8, SHA-256 — the standard's own example of a v8 name-based id) of the
 * given fields. Used for ChirpStack txack and log events, which have no deduplicationId.
 *
 * Why derived from content rather than random: the same event is delivered more than once (MQTT QoS 1
 * redelivery, an HTTP retry by us, ChirpStack's Kafka integration next to MQTT) and a random id would make each
 * copy look new. Why from the normalised fields and not the raw body: the same event arrives as JSON (with any
 * key order or whitespace) and as protobuf, and both must get the same id. The fields are serialised as a JSON
 * array, so no two different field lists produce the same name.
 */
export function derivedEventId(
  kind: string,
  fields: ReadonlyArray<string | number | boolean | null>,
): string {
  const hash = createHash('sha256')
    .update(namespace)
    .update(JSON.stringify([kind, ...fields]))
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Event time parsed from RFC 3339 with up to nanosecond precision (as ChirpStack writes it). */
export interface EventTime {
  /** Epoch milliseconds. */
  ms: number;
  /** `<epoch seconds>.<9-digit nanoseconds>`: the full precision, identical for JSON and protobuf input. */
  canonical: string;
}

const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?\d*(Z|[+-]\d{2}:\d{2})$/i;

export function parseEventTime(text: string): EventTime | null {
  const match = rfc3339.exec(text);
  if (!match) return null;
  const [, base, fraction = '', zone = 'Z'] = match;
  const wholeMs = Date.parse(`${base}${zone.toUpperCase()}`);
  if (Number.isNaN(wholeMs)) return null;
  const seconds = wholeMs / 1000;
  const nanos = Number(fraction.padEnd(9, '0'));
  return { ms: wholeMs + Math.floor(nanos / 1e6), canonical: `${seconds}.${String(nanos).padStart(9, '0')}` };
}

/** RFC 3339 text of a protobuf Timestamp, with all nine fraction digits so no precision is lost. */
export function formatTimestamp(seconds: number, nanos: number): string {
  const whole = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${whole}.${String(nanos).padStart(9, '0')}Z`;
}
