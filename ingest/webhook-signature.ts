import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The v5 webhook signature (`../shared/reference/v5-openapi.json`, POST /api/v1/uplink): header
 * `X-Chirpstack-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw request body keyed with the secret's bytes.
 */
export const signatureHeader = 'x-chirpstack-signature';

const digestBytes = 32;
const headerPattern = /^sha256=([0-9a-f]{64})$/i;

/** The digest in a signature header, or null when the header is missing or not `sha256=<64 hex>`. */
export function parseSignature(header: string | undefined): Buffer | null {
  const match = header === undefined ? null : headerPattern.exec(header.trim());
  return match?.[1] ? Buffer.from(match[1], 'hex') : null;
}

/** The header value a sender puts on `body` (tests and the simulator sign this way). */
export function signBody(body: Buffer | string, secret: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * True when `digest` is the HMAC of `body` under any of `secrets`. Every secret is tried and each comparison is
 * constant-time, so the answer's timing tells nothing about which secret matched or how much of the digest did.
 */
export function signatureMatches(body: Buffer, digest: Buffer, secrets: readonly Buffer[]): boolean {
  if (digest.length !== digestBytes) return false;
  let matched = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(expected, digest)) matched = true;
  }
  return matched;
}
