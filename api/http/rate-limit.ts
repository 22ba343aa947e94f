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

export interface RateLimiter {
  /** Counts one request for `bucket` (e.g. `ip:127.0.0.1`) against `limit` in the current window. */
  hit(bucket: string, limit: number): Promise<RateDecision>;
}

// Fixed window in Redis: one counter per bucket and window, made to expire with the window. Atomic (one script),
// shared by every API instance.
const script = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { count, redis.call('PTTL', KEYS[1]) }
`;

/**
 * A Redis fixed-window limiter. When Redis does not answer, requests are let through (and logged): the limits
 * protect the API from abuse, and refusing every caller during a Redis outage would be worse.
 */
export function createRedisRateLimiter(
  redis: Redis,
  windowS: number,
  logger: Logger,
  prefix = 'rl:api',
): RateLimiter {
  const windowMs = windowS * 1000;
  return {
    async hit(bucket, limit) {
      const window = Math.floor(Date.now() / windowMs);
      try {
        const [count, pttl] = (await redis.eval(script, 1, `${prefix}:${bucket}:${window}`, windowMs)) as [
          number,
          number,
        ];
        const resetS = Math.max(1, Math.ceil((pttl > 0 ? pttl : windowMs) / 1000));
        return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetS };
      } catch (error) {
        logger.warn({ err: error, bucket }, 'rate limiter unavailable; request allowed');
        return { allowed: true, limit, remaining: limit, resetS: windowS };
      }
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

/**
 * The per-IP limit every API surface (v6 and v5) applies before authentication, so floods of unauthenticated
 * requests (logins included) are refused early. Does nothing without a limiter.
 */
export function perIpLimit(limiter: RateLimiter | undefined, limits: RateLimits): RequestHandler {
  return async (req, res, next) => {
    if (limiter) {
      applyDecision(
        res,
        await limiter.hit(`ip:${req.ip ?? 'unknown'}`, limits.perIp),
        limits.windowS,
        'address',
      );
    }
    next();
  };
}
