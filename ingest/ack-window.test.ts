import { describe, expect, it } from 'vitest';
import { OrderedAckWindow } from './ack-window.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('OrderedAckWindow', () => {
  it('acknowledges only finished work, in arrival order, even when later work finishes first', async () => {
    const window = new OrderedAckWindow(10);
    const acks: number[] = [];
    const work = [deferred(), deferred(), deferred()];
    work.forEach((w, i) =>
      window.add(
        w.promise,
        () => acks.push(i),
        () => acks.push(-i),
      ),
    );
    work[2]!.resolve();
    work[1]!.resolve();
    await tick();
    expect(acks).toEqual([]);
    work[0]!.resolve();
    await tick();
    expect(acks).toEqual([0, 1, 2]);
    expect(window.size).toBe(0);
  });

  it('never acknowledges failed work: it reports the failure in order instead', async () => {
    const window = new OrderedAckWindow(10);
    const events: string[] = [];
    const [a, b] = [deferred(), deferred()];
    window.add(
      a.promise,
      () => events.push('ack a'),
      () => events.push('fail a'),
    );
    window.add(
      b.promise,
      () => events.push('ack b'),
      () => events.push('fail b'),
    );
    b.resolve();
    a.reject(new Error('kafka down'));
    await tick();
    expect(events).toEqual(['fail a', 'ack b']);
  });

  it('is full at capacity and frees a slot only when the head is settled', async () => {
    const window = new OrderedAckWindow(2);
    const [a, b] = [deferred(), deferred()];
    window.add(
      a.promise,
      () => {},
      () => {},
    );
    window.add(
      b.promise,
      () => {},
      () => {},
    );
    expect(window.full).toBe(true);
    let space = false;
    void window.waitForSpace().then(() => (space = true));
    b.resolve();
    await tick();
    expect(space).toBe(false);
    a.resolve();
    await tick();
    expect(space).toBe(true);
    await window.drained();
  });
});
