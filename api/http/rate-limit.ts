import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RequestHandler, Response } from 'express';
import { PlatformError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';

/** Requests allowed per window, per caller kind. */
export interface RateLimits {
  windowS: number;
  perIp: number;
  perUser: number;
  perApiKey: number;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window ends. */
  resetS: number;
}

/** One bucket to count a request in (e.g. `ip:127.0.0.1`, `user:<id>`) and its limit per window. */
export interface RateHit {
  bucket: string;
  limit: number;
}

export interface RateLimiter {
  /** Counts one request for `bucket` against `limit` in the current window. */
  hit(bucket: string, limit: number): Promise<RateDecision>;
  /**
   * Counts one request in every bucket at once (one Redis round trip); the decisions in the same order. Every
   * bucket is counted even when an earlier one is over its limit.
   */
  hitAll(hits: readonly RateHit[]): Promise<RateDecision[]>;
}

// Fixed window in Redis: one counter per bucket and window, made to expire with the window. Atomic (one script
// for every bucket of a request), shared by every API instance. Returns count and PTTL per key, flattened.
const script = `
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  out[2 * i - 1] = count
  out[2 * i] = redis.call('PTTL', key)
end
return out
`;
const scriptSha = createHash('sha1').update(script).digest('hex');

/**
 * A Redis fixed-window limiter. The script runs by its SHA (EVALSHA; loaded with EVAL the first time a Redis does
 * not know it), so a request sends the keys, not the script. When Redis does not answer, requests are let through
 * (and logged): the limits protect the API from abuse, and refusing every caller during a Redis outage would be
 * worse.
 */
export function createRedisRateLimiter(
  redis: Redis,
  windowS: number,
  logger: Logger,
  prefix = 'rl:api',
): RateLimiter {
  const windowMs = windowS * 1000;
  const run = async (keys: string[]): Promise<number[]> => {
    try {
      return (await redis.evalsha(scriptSha, keys.length, ...keys, windowMs)) as number[];
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await redis.eval(script, keys.length, ...keys, windowMs)) as number[];
    }
  };
  const hitAll = async (hits: readonly RateHit[]): Promise<RateDecision[]> => {
    if (hits.length === 0) return [];
    const window = Math.floor(Date.now() / windowMs);
    try {
      const out = await run(hits.map((h) => `${prefix}:${h.bucket}:${window}`));
      return hits.map(({ limit }, i) => {
        const count = out[2 * i] ?? 0;
        const pttl = out[2 * i + 1] ?? -1;
        const resetS = Math.max(1, Math.ceil((pttl > 0 ? pttl : windowMs) / 1000));
        return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetS };
      });
    } catch (error) {
      logger.warn(
        { err: error, buckets: hits.map((h) => h.bucket) },
        'rate limiter unavailable; request allowed',
      );
      return hits.map(({ limit }) => ({ allowed: true, limit, remaining: limit, resetS: windowS }));
    }
  };
  return {
    hitAll,
    async hit(bucket, limit) {
      const [decision] = await hitAll([{ bucket, limit }]);
      return decision!;
    },
  };
}

/** Sets the RateLimit headers (IETF draft) and refuses with 429 + Retry-After when over the limit. */
export function applyDecision(res: Response, decision: RateDecision, windowS: number, what: string): void {
  res.set('RateLimit-Limit', String(decision.limit));
  res.set('RateLimit-Remaining', String(decision.remaining));
  res.set('RateLimit-Reset', String(decision.resetS));
  res.set('RateLimit-Policy', `${decision.limit};w=${windowS}`);
  if (!decision.allowed) {
    res.set('Retry-After', String(decision.resetS));
    throw new PlatformError(
      'RATE_LIMITED',
      `rate limit exceeded for this ${what}; retry in ${decision.resetS} s`,
    );
  }
}

declare module 'express-serve-static-core' {
  interface Locals {
    /**
     * Set by perIpLimit on a request that carries credentials: the per-IP bucket still to be counted. The route
     * helper counts it together with the caller's bucket (one round trip) and clears it; whatever is left when
     * the response finishes (no route took it) is counted then.
     */
    pendingIpHit?: RateHit;
  }
}

const hasCredentials = (req: { get(name: string): string | undefined }) =>
  req.get('authorization') !== undefined || req.get('x-api-key') !== undefined;

/**
 * The per-IP limit every API surface (v6 and v5) applies. Requests without credentials (logins included) are
 * counted and refused here, before anything else runs, so floods of unauthenticated requests stop early.
 * Requests with credentials are counted by the route helper after authentication, in the same Redis round trip
 * as the per-user or per-API-key bucket (api/http/route.ts); an over-limit address still gets 429, also when its
 * credentials are bad. Does nothing without a limiter.
 */
export function perIpLimit(limiter: RateLimiter | undefined, limits: RateLimits): RequestHandler {
  return async (req, res, next) => {
    if (!limiter) return next();
    const hit = { bucket: `ip:${req.ip ?? 'unknown'}`, limit: limits.perIp };
    if (hasCredentials(req)) {
      res.locals.pendingIpHit = hit;
      // Not taken by a route (documents, unknown paths): counted after the fact, so it still adds up.
      res.on('finish', () => {
        if (res.locals.pendingIpHit) void limiter.hitAll([res.locals.pendingIpHit]);
      });
      return next();
    }
    applyDecision(res, await limiter.hit(hit.bucket, hit.limit), limits.windowS, 'address');
    next();
  };
}
