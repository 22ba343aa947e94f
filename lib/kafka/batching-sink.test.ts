import { describe, expect, it } from 'vitest';
import { createBatchingSink, type BatchProducer } from './batching-sink.js';

type Batch = Parameters<BatchProducer['sendBatch']>[0];

/** A producer whose calls the test acknowledges or fails by hand. */
function manualProducer() {
  const calls: Array<{ batch: Batch; ack(): void; fail(e: Error): void }> = [];
  const producer: BatchProducer = {
    sendBatch: (batch) =>
      new Promise((resolve, reject) => calls.push({ batch, ack: () => resolve(undefined), fail: reject })),
  };
  return { producer, calls };
}

const rec = (key: string) => ({ key, value: Buffer.from(key) });
const keysOf = (batch: Batch) => batch.topicMessages.flatMap((t) => t.messages.map((m) => m.key));
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('batching sink', () => {
  it('sends concurrent calls as one producer call with acks=-1 and resolves each caller on its acknowledgement', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 5, maxBatchRecords: 100 });
    let resolved = 0;
    const sends = ['a', 'b', 'c'].map((k) => sink.send('t', [rec(k)]).then(() => resolved++));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.batch.acks).toBe(-1);
    expect(keysOf(calls[0]!.batch)).toEqual(['a', 'b', 'c']);
    expect(resolved).toBe(0);
    calls[0]!.ack();
    await Promise.all(sends);
    expect(resolved).toBe(3);
  });

  it('sends at once when a batch is full, keeps one batch in flight, and sends what queued meanwhile next', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 10_000, maxBatchRecords: 2 });
    const first = [sink.send('t', [rec('1')]), sink.send('t', [rec('2')])];
    const later = [sink.send('t', [rec('3')]), sink.send('u', [rec('4')]), sink.send('t', [rec('5')])];
    await tick();
    expect(calls).toHaveLength(1);
    calls[0]!.ack();
    await Promise.all(first);
    await tick();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.batch.topicMessages).toEqual([
      { topic: 't', messages: [rec('3')] },
      { topic: 'u', messages: [rec('4')] },
    ]);
    calls[1]!.ack();
    await tick();
    expect(keysOf(calls[2]!.batch)).toEqual(['5']);
    calls[2]!.ack();
    await Promise.all(later);
  });

  it('makes callers wait, in call order, when the queue is full (backpressure), and admits them as space frees', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 0, maxBatchRecords: 2, maxQueuedRecords: 2 });
    const a = sink.send('t', [rec('a'), rec('b')]);
    const c = sink.send('t', [rec('c')]);
    const d = sink.send('t', [rec('d')]);
    await tick();
    expect(sink.pending()).toBe(4);
    expect(calls).toHaveLength(1);
    calls[0]!.ack();
    await a;
    await tick();
    expect(keysOf(calls[1]!.batch)).toEqual(['c', 'd']);
    calls[1]!.ack();
    await Promise.all([c, d]);
    expect(sink.pending()).toBe(0);
  });

  it('rejects every caller of a failed batch retriably, and reports unhealthy until a batch succeeds', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 0 });
    const a = sink.send('t', [rec('a')]);
    await tick();
    calls[0]!.fail(new Error('broker gone'));
    await expect(a).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true });
    expect(sink.healthy()).toBe(false);
    const b = sink.send('t', [rec('b')]);
    await tick();
    calls[1]!.ack();
    await b;
    expect(sink.healthy()).toBe(true);
  });

  it('reports unhealthy while a batch waits longer than stallMs', async () => {
    const { producer, calls } = manualProducer();
    let now = 0;
    const sink = createBatchingSink(producer, { lingerMs: 0, stallMs: 100 }, () => now);
    const a = sink.send('t', [rec('a')]);
    await tick();
    now = 50;
    expect(sink.healthy()).toBe(true);
    now = 150;
    expect(sink.healthy()).toBe(false);
    calls[0]!.ack();
    await a;
    expect(sink.healthy()).toBe(true);
  });

  it('withdraws queued records when the caller aborts, so they are never sent', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 0, maxBatchRecords: 1 });
    const a = sink.send('t', [rec('a')]);
    const controller = new AbortController();
    const b = sink.send('t', [rec('b')], { signal: controller.signal });
    await tick();
    controller.abort();
    await expect(b).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true });
    calls[0]!.ack();
    await a;
    await sink.flush();
    expect(calls.flatMap((c) => keysOf(c.batch))).toEqual(['a']);
  });

  it('flushes what is queued on close and then refuses new sends', async () => {
    const { producer, calls } = manualProducer();
    const sink = createBatchingSink(producer, { lingerMs: 10_000 });
    const a = sink.send('t', [rec('a')]);
    const closed = sink.close();
    await tick();
    calls[0]!.ack();
    await Promise.all([a, closed]);
    await expect(sink.send('t', [rec('b')])).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
      retriable: true,
    });
  });
});
