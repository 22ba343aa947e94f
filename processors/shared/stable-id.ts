import { createHash } from 'node:crypto';

/**
 * A deterministic UUID (version 5 layout, SHA-1 over the joined parts) for effects whose id must be the same on
 * every replay of the same inputs: consumers and `(tenant_id, event_id)` keys drop repeats by it. Pure: the
 * same parts always give the same id, and no clock or random source is read.
 */
export function stableId(...parts: Array<string | number>): string {
  const hash = createHash('sha1').update(parts.join('\u001f')).digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
