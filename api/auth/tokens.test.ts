import { SignJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { createTokenService, tokenAudience, tokenIssuer } from './tokens.js';

const secret = 'unit-test-secret-that-is-long-enough-32';
const tokens = createTokenService({ jwtSecret: secret, accessTokenTtlS: 60 });
const claims = { userId: '00000000-0000-4000-8000-000000000001', tenantId: null, platformAdmin: false };

async function rejects(token: string) {
  const error = await tokens.verify(token).catch((e: unknown) => e);
  expect(isPlatformError(error, 'UNAUTHENTICATED')).toBe(true);
}

describe('access tokens', () => {
  it('round-trip their claims', async () => {
    const { accessToken } = await tokens.issue(claims);
    expect(await tokens.verify(accessToken)).toEqual(claims);
  });

  it.each([
    [
      'alg:none',
      (t: string) => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${t.split('.')[1]}.`,
    ],
    [
      'a tampered payload',
      (t: string) => t.replace(/\.([^.]+)\./, (_m, p: string) => `.${p.slice(0, -2)}AA.`),
    ],
    ['another key', (t: string) => t.slice(0, -4) + 'AAAA'],
    ['garbage', () => 'x.y.z'],
  ])('are refused with %s', async (_name, mutate) => {
    const { accessToken } = await tokens.issue(claims);
    await rejects(mutate(accessToken));
  });

  it('are refused when expired or for another audience', async () => {
    const key = new TextEncoder().encode(secret);
    const base = () =>
      new SignJWT({ tid: null, pa: false }).setProtectedHeader({ alg: 'HS256' }).setSubject(claims.userId);
    await rejects(
      await base().setIssuer(tokenIssuer).setAudience(tokenAudience).setExpirationTime(1).sign(key),
    );
    await rejects(await base().setIssuer(tokenIssuer).setAudience('other').setExpirationTime('1m').sign(key));
  });

  it('verified once are remembered, but still end at their expiry, and a tampered copy is still refused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const service = createTokenService({ jwtSecret: secret, accessTokenTtlS: 60 });
      const { accessToken } = await service.issue(claims);
      expect(await service.verify(accessToken)).toEqual(claims);
      expect(await service.verify(accessToken)).toEqual(claims);
      const tampered = accessToken.replace(/\.([^.]+)\./, (_m, p: string) => `.${p.slice(0, -2)}AA.`);
      expect(
        isPlatformError(await service.verify(tampered).catch((e: unknown) => e), 'UNAUTHENTICATED'),
      ).toBe(true);
      vi.setSystemTime(Date.now() + 61_000);
      const expired = await service.verify(accessToken).catch((e: unknown) => e);
      expect(isPlatformError(expired, 'UNAUTHENTICATED')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('need a key of at least 32 bytes', () => {
    expect(() => createTokenService({ jwtSecret: 'short', accessTokenTtlS: 60 })).toThrow(/32 bytes/);
  });
});

describe('passwords', () => {
  it('verify only the password they were made from; a missing hash never verifies', async () => {
    const hash = await hashPassword('s3cret pass');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('s3cret pass', hash)).toBe(true);
    expect(await verifyPassword('s3cret pasS', hash)).toBe(false);
    expect(await verifyPassword('anything', null)).toBe(false);
    expect(await verifyPassword('anything', 'garbage')).toBe(false);
  });
});
