import { describe, expect, it } from 'vitest';
import { closedGate, observeLag, type RaiseGate, type RaiseGatePolicy } from '../shared/lag-gate.js';
import {
  devicePolicy,
  gatewayPolicy,
  initialLivenessState,
  reduceLiveness,
  type LivenessEffect,
  type LivenessEvent,
  type LivenessPolicy,
  type LivenessState,
} from './reduce.js';

const MIN = 60_000;
const heard = (atMin: number): LivenessEvent => ({ type: 'heard', at: atMin * MIN });
const tick = (nowMin: number): LivenessEvent => ({ type: 'tick', now: nowMin * MIN });

function run(before: LivenessState, input: LivenessEvent[], policy: LivenessPolicy) {
  let state = before;
  const effects: LivenessEffect[] = [];
  for (const event of input) {
    const result = reduceLiveness(state, event, policy);
    state = result.state;
    effects.push(...result.effects);
  }
  return { state, effects, log: effects.map((e) => `${e.state}@${e.at / MIN}`) };
}

const device = initialLivenessState('device', 't1', 'D1');
const gateway = initialLivenessState('gateway', null, 'G1');
// Device expected every 60 min, grace 30 min: late after 90 min.
const hourly = devicePolicy(60 * MIN);
const tenMinutes = gatewayPolicy(10);

describe('reduceLiveness', () => {
  it.each([
    {
      name: 'a device heard on time raises nothing',
      before: device,
      policy: hourly,
      input: [heard(0), tick(60), heard(60), tick(149)],
      log: [],
    },
    {
      name: 'a silent device raises once, dated lastHeard + silence, however many ticks follow',
      before: device,
      policy: hourly,
      input: [heard(0), tick(89), tick(95), tick(120), tick(300)],
      log: ['raised@90'],
    },
    {
      name: 'a device never heard raises nothing',
      before: device,
      policy: hourly,
      input: [tick(1_000)],
      log: [],
    },
    {
      name: 'the device alert clears on the second uplink after it',
      before: device,
      policy: hourly,
      input: [heard(0), tick(90), heard(100), heard(160)],
      log: ['raised@90', 'cleared@160'],
    },
    {
      name: 'a gateway not heard for 10 minutes raises; three frames clear it',
      before: gateway,
      policy: tenMinutes,
      input: [heard(0), tick(9), tick(10), heard(11), heard(11.5), heard(12)],
      log: ['raised@10', 'cleared@12'],
    },
    {
      name: 'a flapping gateway keeps one open alert instead of a raise/clear pair per flap',
      before: gateway,
      policy: tenMinutes,
      input: [
        heard(0),
        tick(10),
        heard(11),
        heard(11.5),
        tick(22),
        heard(23),
        tick(34),
        heard(35),
        heard(36),
        heard(37),
      ],
      log: ['raised@10', 'cleared@37'],
    },
    {
      name: 'a late frame from before the raise does not count towards recovery',
      before: gateway,
      policy: tenMinutes,
      input: [heard(0), tick(10), heard(5), heard(12), heard(13)],
      log: ['raised@10'],
    },
    {
      name: 'an out-of-order frame never moves lastHeard back',
      before: device,
      policy: hourly,
      input: [heard(50), heard(10), tick(139)],
      log: [],
    },
  ])('$name', ({ before, policy, input, log }) => {
    expect(run(before, input, policy).log).toEqual(log);
  });

  it('alert ids are stable across replays, and the clear names the alert it closes', () => {
    const input = [heard(0), tick(90), heard(100), heard(160)];
    const first = run(device, input, hourly).effects;
    expect(run(device, input, hourly).effects).toEqual(first);
    expect(first[1]?.alertId).toBe(first[0]?.eventId);
    expect(first[0]).toMatchObject({ kind: 'device', tenantId: 't1', id: 'D1', lastHeard: 0 });
  });
});

describe('observeLag (the raise gate)', () => {
  const policy: RaiseGatePolicy = { maxLag: 10, settleMs: 60_000 };
  it.each([
    {
      name: 'a starting processor caught up at once waits settleMs before raising',
      input: [
        { now: 0, lag: 0 },
        { now: 59_999, lag: 3 },
        { now: 60_000, lag: 10 },
      ],
      mayRaise: [false, false, true],
    },
    {
      name: 'a lag above maxLag closes the gate and the settle time starts over',
      input: [
        { now: 0, lag: 0 },
        { now: 60_000, lag: 0 },
        { now: 70_000, lag: 11 },
        { now: 80_000, lag: 0 },
        { now: 139_999, lag: 0 },
        { now: 140_000, lag: 0 },
      ],
      mayRaise: [false, true, false, false, false, true],
    },
    {
      name: 'an unknown lag (broker unreachable) closes the gate',
      input: [
        { now: 0, lag: 0 },
        { now: 60_000, lag: null },
        { now: 61_000, lag: 0 },
        { now: 121_000, lag: 0 },
      ],
      mayRaise: [false, false, false, true],
    },
  ])('$name', ({ input, mayRaise }) => {
    let gate: RaiseGate = closedGate;
    const seen: boolean[] = [];
    for (const observation of input) {
      const result = observeLag(gate, observation, policy);
      gate = result.gate;
      seen.push(result.mayRaise);
    }
    expect(seen).toEqual(mayRaise);
  });
});
