import { describe, expect, it } from 'vitest';
import { decideResumeOffset } from './offsets.js';

describe('decideResumeOffset', () => {
  it.each([
    {
      name: 'never applied: the log start',
      stored: undefined,
      low: 5n,
      high: 9n,
      want: { offset: 5n, reason: 'fresh' },
    },
    {
      name: 'inside the log: as stored',
      stored: 7n,
      low: 5n,
      high: 9n,
      want: { offset: 7n, reason: 'stored' },
    },
    {
      name: 'at the log end: as stored',
      stored: 9n,
      low: 5n,
      high: 9n,
      want: { offset: 9n, reason: 'stored' },
    },
    {
      name: 'retention deleted unapplied records: the log start, reported',
      stored: 2n,
      low: 5n,
      high: 9n,
      want: { offset: 5n, reason: 'behind-log-start', stored: 2n },
    },
    {
      name: 'topic recreated (stored beyond the end): the new log start, reported',
      stored: 500n,
      low: 0n,
      high: 3n,
      want: { offset: 0n, reason: 'beyond-log-end', stored: 500n },
    },
  ])('$name', ({ stored, low, high, want }) => {
    expect(decideResumeOffset(stored, low, high)).toEqual(want);
  });
});
