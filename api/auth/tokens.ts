import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { z } from 'zod';
import { PlatformError } from '../../lib/errors.js';

/**
 * Access tokens: HS256 JWTs, short-lived, never stored. Claims: `sub` user id, `tid` the tenant selected at
 * login or refresh (a request may pick another of the user's tenants with X-Tenant-Id), `pa` platform admin.
 * Verification accepts HS256 only (so `alg: none` and algorithm confusion fail), with this issuer and audience,
 * and an unexpired `exp`; every failure is UNAUTHENTICATED.
 */
export interface AccessClaims {
  userId: string;
  tenantId: string | null;
  platformAdmin: boolean;
}

export interface TokenSettings {
  jwtSecret: string;
  accessTokenTtlS: number;
}

export interface TokenService {
  issue(claims: AccessClaims): Promise<{ accessToken: string; expiresIn: number }>;
  verify(token: string): Promise<AccessClaims>;
}

export const tokenIssuer = 'parking-platform';
export const tokenAudience = 'parking-api-v6';

const payloadSchema = z.object({
  sub: z.string().uuid(),
  exp: z.number(),
  tid: z.string().uuid().nullable(),
  pa: z.boolean(),
});

/** Verified tokens remembered per service (a console sends the same token on every request until it expires). */
const maxRemembered = 10_000;

export function createTokenService(settings: TokenSettings): TokenService {
  const key = new TextEncoder().encode(settings.jwtSecret);
  if (key.length < 32) throw new PlatformError('CONFIG_INVALID', 'the JWT secret needs at least 32 bytes');
  // Token text -> its claims and expiry (ms). Only the signature check is skipped for a token verified before:
  // the same text carries the same signature, a remembered token still ends at its `exp`, and what the token
  // grants (memberships, roles) is read fresh on every request. Bounded: the oldest entry goes first.
  const verified = new Map<string, { claims: AccessClaims; expiresAtMs: number }>();
  return {
    async issue(claims) {
      const accessToken = await new SignJWT({ tid: claims.tenantId, pa: claims.platformAdmin })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.userId)
        .setIssuer(tokenIssuer)
        .setAudience(tokenAudience)
        .setIssuedAt()
        .setJti(randomUUID())
        .setExpirationTime(`${settings.accessTokenTtlS}s`)
        .sign(key);
      return { accessToken, expiresIn: settings.accessTokenTtlS };
    },
    async verify(token) {
      const known = verified.get(token);
      if (known) {
        if (known.expiresAtMs > Date.now()) return known.claims;
        verified.delete(token);
      }
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: tokenIssuer,
          audience: tokenAudience,
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (error) {
        throw new PlatformError('UNAUTHENTICATED', 'invalid or expired access token', { cause: error });
      }
      const claims = payloadSchema.safeParse(payload);
      if (!claims.success) throw new PlatformError('UNAUTHENTICATED', 'invalid access token claims');
      const result = { userId: claims.data.sub, tenantId: claims.data.tid, platformAdmin: claims.data.pa };
      if (verified.size >= maxRemembered) verified.delete(verified.keys().next().value!);
      verified.set(token, { claims: result, expiresAtMs: claims.data.exp * 1000 });
      return result;
    },
  };
}
