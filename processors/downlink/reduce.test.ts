import { describe, expect, it } from 'vitest';
import {
  defaultDownlinkPolicy,
  initialDownlinkState,
  reduceDownlink,
  takeToken,
  type DownlinkEffect,
  type DownlinkEvent,
  type DownlinkPolicy,
  type DownlinkState,
} from './reduce.js';

const S = 1_000;
const MIN = 60 * S;
const enqueue = (
  at: number,
  requestId: string,
  payloadHex = '01',
  over: Partial<Extract<DownlinkEvent, { type: 'enqueue' }>> = {},
): DownlinkEvent => ({
  type: 'enqueue',
  at,
  tenantId: 't1',
  devEui: 'D1',
  gatewayId: 'g1',
  requestId,
  correlationId: `cmd-${requestId}`,
  fPort: 1,
  payloadHex,
  confirmed: false,
  ...over,
});
const tick = (now: number): DownlinkEvent => ({ type: 'tick', now });
const outcome = (
  at: number,
  jobId: string,
  kind: 'ack' | 'txack',
  acknowledged: boolean | null = null,
  devEui = 'D1',
): DownlinkEvent => ({ type: 'outcome', at, tenantId: 't1', devEui, jobId, kind, acknowledged });

function run(before: DownlinkState, input: DownlinkEvent[], policy: DownlinkPolicy = defaultDownlinkPolicy) {
  let state = before;
  const effects: DownlinkEffect[] = [];
  for (const event of input) {
    const result = reduceDownlink(state, event, policy);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects, sends: effects.filter((e) => e.type === 'send-downlink') };
}
/** Runs in two steps so the second can refer to the job id of the first send. */
function sentOnce(payloadHex = '01', confirmed = false) {
  return run(initialDownlinkState, [enqueue(0, 'r1', payloadHex, { confirmed }), tick(0)]);
}
const firstJobId = () => sentOnce().sends[0]!.jobId;
const job = (state: DownlinkState) => state.devices['t1/D1']?.job ?? null;

type Case = {
  name: string;
  input: () => { state: DownlinkState; effects: DownlinkEffect[] };
  assert: (r: ReturnType<typeof run>) => void;
};

const cases: Case[] = [
  {
    name: 'an enqueued job is sent on the next tick, not before',
    input: () => run(initialDownlinkState, [enqueue(0, 'r1')]),
    assert: ({ effects, state }) => {
      expect(effects).toEqual([]);
      const after = run(state, [tick(0)]);
      expect(after.sends).toMatchObject([
        { attempt: 1, fPort: 1, payloadHex: '01', gatewayId: 'g1', requestId: 'r1' },
      ]);
      expect(after.sends[0]?.jobId).toMatch(/^[0-9a-f-]{36}$/);
    },
  },
  {
    name: 'coalescing: the latest request replaces a queued one; one send, the other superseded',
    input: () => run(initialDownlinkState, [enqueue(0, 'r1', '01'), enqueue(1, 'r2', '02'), tick(1)]),
    assert: ({ effects, sends }) => {
      expect(sends.map((s) => s.payloadHex)).toEqual(['02']);
      expect(effects.filter((e) => e.type === 'downlink-superseded').map((e) => e.requestId)).toEqual(['r1']);
    },
  },
  {
    name: 'coalescing in flight: the outcome of the superseded job is ignored',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const oldJob = job(state)!.jobId;
      const after = run(state, [enqueue(S, 'r2', '02'), outcome(2 * S, oldJob, 'txack'), tick(2 * S)]);
      expect(after.effects.filter((e) => e.type === 'downlink-confirmed')).toEqual([]);
      expect(after.sends.map((s) => s.payloadHex)).toEqual(['02']);
    },
  },
  {
    name: 'a request with the payload already pending keeps the pending job and its backoff',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const after = run(state, [enqueue(S, 'r2', '01'), tick(S)]);
      expect(after.effects.map((e) => [e.type, 'reason' in e ? e.reason : null])).toEqual([
        ['downlink-skipped', 'same-as-pending'],
      ]);
      expect(job(after.state)).toMatchObject({ requestId: 'r1', attempts: 1 });
    },
  },
  {
    name: 'a txack confirms an unconfirmed-mode downlink; nothing more is sent',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const after = run(state, [outcome(S, firstJobId(), 'txack'), tick(60 * MIN)]);
      expect(after.effects).toMatchObject([
        { type: 'downlink-confirmed', kind: 'txack', requestId: 'r1', correlationId: 'cmd-r1' },
      ]);
      expect(job(after.state)).toBeNull();
    },
  },
  {
    name: 'a confirmed-mode downlink needs an ack: txack is not enough, a negative ack retries at the backoff',
    input: () => sentOnce('01', true),
    assert: ({ state }) => {
      const jobId = job(state)!.jobId;
      const after = run(state, [
        outcome(S, jobId, 'txack'),
        outcome(2 * S, jobId, 'ack', false),
        tick(29 * S),
        tick(30 * S),
      ]);
      expect(after.sends.map((s) => s.attempt)).toEqual([2]);
      const confirmed = run(after.state, [outcome(31 * S, jobId, 'ack', true)]);
      expect(confirmed.effects).toMatchObject([{ type: 'downlink-confirmed', kind: 'ack' }]);
    },
  },
  {
    name: 'a late txack of the first send confirms a job whose retry is waiting for a token',
    input: () =>
      run(initialDownlinkState, [enqueue(0, 'r1'), tick(0), tick(30 * S)], {
        ...defaultDownlinkPolicy,
        tenantPerMinute: 1,
      }),
    assert: ({ state, sends }) => {
      expect(sends).toHaveLength(1);
      expect(job(state)).toMatchObject({ status: 'queued', attempts: 1 });
      const after = run(state, [outcome(31 * S, job(state)!.jobId, 'txack')]);
      expect(after.effects).toMatchObject([{ type: 'downlink-confirmed' }]);
    },
  },
  {
    name: 'an identical payload confirmed within the hour is not sent again; after the hour it is',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const confirmed = run(state, [outcome(S, firstJobId(), 'txack')]).state;
      const within = run(confirmed, [enqueue(S + 59 * MIN, 'r2', '01'), tick(S + 59 * MIN)]);
      expect(within.sends).toEqual([]);
      expect(within.effects).toMatchObject([{ type: 'downlink-skipped', reason: 'already-confirmed' }]);
      const after = run(confirmed, [enqueue(S + 60 * MIN, 'r3', '01'), tick(S + 60 * MIN)]);
      expect(after.sends).toHaveLength(1);
    },
  },
  {
    name: 'a confirmed payload makes a pending different job obsolete when the same payload is asked again',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const confirmed = run(state, [outcome(S, firstJobId(), 'txack')]).state;
      const after = run(confirmed, [enqueue(2 * S, 'r2', '02'), enqueue(3 * S, 'r3', '01'), tick(3 * S)]);
      expect(after.sends).toEqual([]);
      expect(job(after.state)).toBeNull();
    },
  },
  {
    name: 'without outcomes: five sends with exponential backoff (30, 60, 120, 240 s), then dead letter',
    input: () => sentOnce('01'),
    assert: ({ state }) => {
      const times = [0, 30, 90, 210, 450, 930].map((s) => s * S);
      const after = run(
        state,
        times.flatMap((t) => [tick(t - 1), tick(t)]),
      );
      expect(after.sends.map((s) => s.attempt)).toEqual([2, 3, 4, 5]);
      expect(after.effects.at(-1)).toMatchObject({
        type: 'downlink-dead-lettered',
        attempts: 5,
        at: 930 * S,
      });
      expect(job(after.state)).toBeNull();
    },
  },
  {
    name: 'per-gateway bucket: 31 devices behind one gateway get 30 sends now and one 2 s later',
    input: () =>
      run(
        initialDownlinkState,
        Array.from({ length: 31 }, (_, i) =>
          enqueue(i, `r${i}`, '01', { devEui: `D${i}`, tenantId: `t${i}` }),
        ).concat([tick(100), tick(100 + 2 * S - 1), tick(100 + 2 * S)]),
      ),
    assert: ({ sends }) => {
      expect(sends).toHaveLength(31);
      expect(sends.at(-1)?.devEui).toBe('D30');
    },
  },
  {
    name: 'per-tenant bucket: 101 devices on different gateways get 100 sends; a gateway token is not spent',
    input: () =>
      run(
        initialDownlinkState,
        Array.from({ length: 101 }, (_, i) =>
          enqueue(i, `r${i}`, '01', { devEui: `D${i}`, gatewayId: `g${i}` }),
        ).concat([tick(200)]),
      ),
    assert: ({ sends, state }) => {
      expect(sends).toHaveLength(100);
      expect(state.gatewayBuckets['g100']).toBeUndefined();
    },
  },
];

describe('reduceDownlink', () => {
  it.each(cases)('$name', ({ input, assert }) => {
    const first = input();
    assert({ ...first, sends: first.effects.filter((e) => e.type === 'send-downlink') });
  });
});

describe('takeToken', () => {
  it.each([
    { name: 'a new bucket starts full', bucket: undefined, now: 0, taken: true, tokens: 29 },
    {
      name: 'an empty bucket refills at perMinute/60 000 per ms',
      bucket: { tokens: 0, updatedAt: 0 },
      now: 2_000,
      taken: true,
      tokens: 0,
    },
    {
      name: 'not yet a whole token',
      bucket: { tokens: 0, updatedAt: 0 },
      now: 1_999,
      taken: false,
      tokens: 0.9995,
    },
    {
      name: 'refill stops at capacity',
      bucket: { tokens: 0, updatedAt: 0 },
      now: 10 * 60_000,
      taken: true,
      tokens: 29,
    },
    {
      name: 'a clock going back refills nothing',
      bucket: { tokens: 0.5, updatedAt: 5_000 },
      now: 1_000,
      taken: false,
      tokens: 0.5,
    },
  ])('$name', ({ bucket, now, taken, tokens }) => {
    const result = takeToken(bucket, 30, now);
    expect(result.taken).toBe(taken);
    expect(result.bucket.tokens).toBeCloseTo(tokens, 9);
  });
});
