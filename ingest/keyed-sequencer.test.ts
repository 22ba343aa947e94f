import { describe, expect, it } from 'vitest';
import { KeyedSequencer, type Turn } from './bridge.js';

describe('KeyedSequencer', () => {
  it('gives a free key its turn at once (no promise), and takes it back on release', () => {
    const sequencer = new KeyedSequencer();
    const turn = sequencer.acquire('A');
    expect(turn).not.toBeInstanceOf(Promise);
    expect(sequencer.size).toBe(1);
    (turn as Turn).release();
    expect(sequencer.size).toBe(0);
    expect(sequencer.acquire('A')).not.toBeInstanceOf(Promise);
  });

  it('hands a held key to its waiters one at a time, in call order; other keys do not wait', async () => {
    const sequencer = new KeyedSequencer();
    const order: string[] = [];
    let holders = 1;
    let mostHolders = 1;
    const first = sequencer.acquire('A') as Turn;
    const waiters = ['a2', 'a3', 'a4'].map(async (name) => {
      const turn = await sequencer.acquire('A');
      mostHolders = Math.max(mostHolders, ++holders);
      order.push(name);
      // Released on a later tick, so a waiter that skipped the queue would be seen first.
      await new Promise((resolve) => setImmediate(resolve));
      holders--;
      turn.release();
    });
    expect(sequencer.acquire('B')).not.toBeInstanceOf(Promise);
    order.push('a1');
    holders--;
    first.release();
    first.release(); // a second release of the same turn does not hand out another one
    await Promise.all(waiters);
    expect(order).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(mostHolders).toBe(1);
    expect(sequencer.size).toBe(1); // B is still held
  });
});
