import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SharedClaimState, SharedDedupStore } from './dedup.js';

/** The value of a key whose record is durable (the value earlier versions of the bridge wrote, so they agree). */
const done = '1';

// Atomic over all keys (one script): any key done -> 2; else any key held by another claim -> 1; else every key
// is set to this claim's token for inFlightMs -> 0.
const claimScript = `
local busy = false
for _, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value == '${done}' then return 2 end
  if value and value ~= ARGV[1] then busy = true end
end
if busy then return 1 end
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
return 0
`;

// Compare-and-delete: only the keys this claim still holds (an expired claim's keys may be someone else's now).
const releaseScript = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
`;

const claimStates: readonly SharedClaimState[] = ['claimed', 'in-flight', 'done'];

/**
 * The dedup keys in Redis, so several bridge instances agree. A claim is one Lua script (`claimed` sets every key
 * to the claim's token with a PX expiry of the in-flight time), `complete` sets `key 1 EX ttl` after the record
 * is durable, `release` deletes only the keys still holding the claim's token. Scripts run by EVALSHA (loaded on
 * first use): one round trip each. Keys are prefixed so they never collide with other users of the same Redis.
 * Single Redis (or one hash slot): a claim's keys are read and written together.
 */
export function createRedisDedupStore(redis: Redis, prefix = 'ingest:dedup:'): SharedDedupStore {
  const run = script(redis);
  const prefixed = (keys: readonly string[]) => keys.map((k) => prefix + k);
  return {
    async claim(keys, token, inFlightMs) {
      const answer = await run(claimScript, prefixed(keys), [token, String(inFlightMs)]);
      const state = claimStates[Number(answer)];
      if (!state) throw new Error(`unexpected dedup claim answer ${String(answer)}`);
      return state;
    },
    async complete(keys, ttlSeconds) {
      const pipeline = redis.pipeline();
      for (const k of prefixed(keys)) pipeline.set(k, done, 'EX', ttlSeconds);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    },
    async release(keys, token) {
      await run(releaseScript, prefixed(keys), [token]);
    },
  };
}

/** Runs a Lua script by its SHA1, loading it with EVAL when Redis does not know it (first use, after a restart). */
function script(redis: Redis) {
  const shas = new Map<string, string>();
  return async (lua: string, keys: string[], args: string[]): Promise<unknown> => {
    let sha = shas.get(lua);
    if (!sha) {
      sha = createHash('sha1').update(lua).digest('hex');
      shas.set(lua, sha);
    }
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}
