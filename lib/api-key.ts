import { createHash } from 'node:crypto';

/** API keys are stored only as their SHA-256; this is the one function that computes it. */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}
