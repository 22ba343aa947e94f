import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from './backoff.js';

const options = { initialMs: 100, maxMs: 5_000 };

describe('backoffDelayMs', () => {
  it.each([
    { name: 'first attempt waits the initial delay', attempt: 1, random: 1, expected: 100 },
    { name: 'each attempt doubles the delay', attempt: 3, random: 1, expected: 400 },
    { name: 'the delay is capped', attempt: 20, random: 1, expected: 5_000 },
    { name: 'jitter never goes below half the step', attempt: 2, random: 0, expected: 100 },
    { name: 'attempt 0 is treated as the first', attempt: 0, random: 1, expected: 100 },
  ])('$name', ({ attempt, random, expected }) => {
    expect(backoffDelayMs(attempt, options, () => random)).toBe(expected);
  });
});
