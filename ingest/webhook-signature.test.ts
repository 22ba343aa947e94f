import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSignature, signatureMatches, signBody } from './webhook-signature.js';

const body = Buffer.from('{"deduplicationId":"x"}');
const current = Buffer.alloc(32, 1);
const previous = Buffer.alloc(32, 2);
const other = Buffer.alloc(32, 3);
const hex = (key: Buffer, b = body) => createHmac('sha256', key).update(b).digest('hex');

describe('parseSignature', () => {
  it.each([
    { name: 'missing', header: undefined, ok: false },
    { name: 'empty', header: '', ok: false },
    { name: 'bare hex without scheme', header: hex(current), ok: false },
    { name: 'other scheme', header: `sha1=${hex(current)}`, ok: false },
    { name: 'short digest', header: `sha256=${hex(current).slice(2)}`, ok: false },
    { name: 'not hex', header: `sha256=${'z'.repeat(64)}`, ok: false },
    { name: 'well formed', header: `sha256=${hex(current)}`, ok: true },
    { name: 'upper-case hex, padded', header: ` sha256=${hex(current).toUpperCase()} `, ok: true },
  ])('$name', ({ header, ok }) => {
    const digest = parseSignature(header);
    expect(digest !== null).toBe(ok);
    if (digest) expect(digest.toString('hex')).toBe(hex(current));
  });
});

describe('signatureMatches', () => {
  it.each([
    { name: 'current secret', key: current, secrets: [current, previous], body, ok: true },
    { name: 'previous secret', key: previous, secrets: [current, previous], body, ok: true },
    { name: 'revoked secret', key: other, secrets: [current, previous], body, ok: false },
    { name: 'no secrets', key: current, secrets: [], body, ok: false },
    { name: 'tampered body', key: current, secrets: [current], body: Buffer.from('{}'), ok: false },
  ])('$name', ({ key, secrets, body: signed, ok }) => {
    const digest = parseSignature(signBody(body, key))!;
    expect(signatureMatches(signed, digest, secrets)).toBe(ok);
  });

  it('refuses a digest of the wrong length without throwing', () => {
    expect(signatureMatches(body, Buffer.alloc(16), [current])).toBe(false);
  });
});
