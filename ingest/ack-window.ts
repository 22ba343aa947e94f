/**
 * A bounded window of messages being processed concurrently whose acknowledgements must go out in arrival
 * order (MQTT 3.1.1 §4.6: PUBACKs in the order the PUBLISHes were received). `ack` of an entry is called only
 * after its work resolved and every earlier entry was acknowledged or failed; `fail` is called, in the same
 * order, for work that rejected, and that entry is never acknowledged.
 */
interface WindowEntry {
  state: 'running' | 'ok' | 'failed';
  error?: unknown;
  ack(): void;
  fail(error: unknown): void;
}

export class OrderedAckWindow {
  readonly #capacity: number;
  readonly #entries: WindowEntry[] = [];
  readonly #space: Array<() => void> = [];
  readonly #empty: Array<() => void> = [];

  constructor(capacity: number) {
    if (capacity < 1) throw new RangeError('OrderedAckWindow capacity must be at least 1');
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.length;
  }

  get full(): boolean {
    return this.#entries.length >= this.#capacity;
  }

  /** Resolves when there is room for one more entry. */
  async waitForSpace(): Promise<void> {
    while (this.full) await new Promise<void>((resolve) => this.#space.push(resolve));
  }

  /** Resolves when every entry was acknowledged or failed. */
  async drained(): Promise<void> {
    if (this.#entries.length === 0) return;
    await new Promise<void>((resolve) => this.#empty.push(resolve));
  }

  add(work: Promise<unknown>, ack: () => void, fail: (error: unknown) => void): void {
    const entry: WindowEntry = { state: 'running', ack, fail };
    this.#entries.push(entry);
    work.then(
      () => {
        entry.state = 'ok';
        this.#release();
      },
      (error: unknown) => {
        entry.state = 'failed';
        entry.error = error;
        this.#release();
      },
    );
  }

  #release(): void {
    let released = 0;
    while (this.#entries.length > 0 && this.#entries[0]!.state !== 'running') {
      const entry = this.#entries.shift()!;
      released++;
      if (entry.state === 'ok') entry.ack();
      else entry.fail(entry.error);
    }
    for (const resolve of this.#space.splice(0, released)) resolve();
    if (this.#entries.length === 0) for (const resolve of this.#empty.splice(0)) resolve();
  }
}
