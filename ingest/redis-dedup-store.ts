import type { Redis } from 'ioredis';
import type { SharedDedupStore } from './dedup.js';

/**
 * The dedup keys in Redis, so several bridge instances agree: `EXISTS` before publishing, `SET key 1 EX ttl`
 * after the record is durable (one pipelined round trip each). Keys are prefixed so they never collide with
 * other users of the same Redis.
 */
export function createRedisDedupStore(redis: Redis, prefix = 'ingest:dedup:'): SharedDedupStore {
  return {
    async anySeen(keys) {
      const found = await redis.exists(...keys.map((k) => prefix + k));
      return found > 0;
    },
    async remember(keys, ttlSeconds) {
      const pipeline = redis.pipeline();
      for (const k of keys) pipeline.set(prefix + k, '1', 'EX', ttlSeconds);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
  };
}
