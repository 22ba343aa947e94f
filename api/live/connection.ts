import type { WebSocket } from 'ws';
import { LruCache } from '../../lib/lru.js';
import {
  closeCodes,
  liveEventKinds,
  type LiveEvent,
  type LiveEventKind,
  type ReadyMessage,
  type ServerMessage,
} from './envelope.js';
import type { LiveSubscriber } from './hub.js';

export interface ConnectionLimits {
  /** Bytes the socket may hold unsent (ws `bufferedAmount`) before the client counts as too slow. */
  maxBufferedBytes: number;
  /** Live events held while the replay runs; more means the client cannot catch up: cut off like a slow one. */
  maxPendingEvents: number;
  /** Ids remembered to drop repeats (replay/live seam, outbox repeats); at least the replay bound. */
  dedupeIds: number;
  /** After a close frame is queued, how long the client has to answer before the socket is destroyed. */
  closeGraceMs: number;
}

export type DropReason = 'slow-consumer' | 'heartbeat';

/**
 * One client socket. States: REPLAYING (live events for the tenant are held, bounded) → LIVE (sent as they come)
 * → CLOSED. The hub subscription starts before the replay query, so an event committed after the query's snapshot
 * is held and sent after it, and one that is in both is sent once (dedupe by id): no gap, no duplicate at the seam.
 *
 * Repeats are dropped within one connection only (the seam, outbox repeats). Across a reconnect the client drops
 * them: the replay's lookback (replay.ts) re-sends events positioned just before the cursor, which the previous
 * connection may have sent already.
 *
 * Memory is bounded: the held events by maxPendingEvents, the unsent bytes by maxBufferedBytes (checked before
 * every send), the remembered ids by dedupeIds. Passing a bound closes the socket with 4008; nothing queues without
 * limit on behalf of a slow client.
 */
export class LiveConnection implements LiveSubscriber {
  #state: 'REPLAYING' | 'LIVE' | 'CLOSED' = 'REPLAYING';
  #pending: LiveEvent[] = [];
  readonly #sent: LruCache<string, true>;
  /** Set by a pong, cleared by each heartbeat ping: a socket still false at the next beat is dead. */
  alive = true;

  constructor(
    readonly tenantId: string,
    private readonly ws: WebSocket,
    private readonly kinds: ReadonlySet<LiveEventKind>,
    private readonly limits: ConnectionLimits,
    private readonly onDrop: (reason: DropReason) => void,
  ) {
    this.#sent = new LruCache(limits.dedupeIds);
  }

  get state(): 'REPLAYING' | 'LIVE' | 'CLOSED' {
    return this.#state;
  }

  deliver(event: LiveEvent): void {
    if (!this.kinds.has(event.kind)) return;
    if (this.#state === 'REPLAYING') {
      if (this.#pending.length >= this.limits.maxPendingEvents) this.#drop('slow-consumer');
      else this.#pending.push(event);
    } else if (this.#state === 'LIVE') this.#sendEvent(event);
  }

  /** Sends the replayed events (in cursor order), then `ready`, then the events held meanwhile; goes LIVE. */
  finishReplay(replayed: readonly LiveEvent[], resume: ReadyMessage['resume']): void {
    if (this.#state !== 'REPLAYING') return;
    for (const event of replayed) if (this.kinds.has(event.kind)) this.#sendEvent(event);
    this.#send({
      type: 'ready',
      tenantId: this.tenantId,
      kinds: liveEventKinds.filter((k) => this.kinds.has(k)),
      resume,
    });
    const held = this.#pending;
    this.#pending = [];
    if (this.#state === 'REPLAYING') this.#state = 'LIVE';
    for (const event of held) this.#sendEvent(event);
  }

  heartbeat(): void {
    if (this.#state === 'CLOSED') return;
    if (!this.alive) {
      this.onDrop('heartbeat');
      this.#state = 'CLOSED';
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /** Queues a close frame; a client that does not complete the close within closeGraceMs is cut off. */
  close(code: number, reason: string): void {
    if (this.#state === 'CLOSED') return;
    this.#state = 'CLOSED';
    this.#pending = [];
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), this.limits.closeGraceMs).unref();
  }

  #drop(reason: DropReason): void {
    this.onDrop(reason);
    this.close(closeCodes.slowConsumer, 'send buffer full: reconnect with lastEventId');
  }

  #sendEvent(event: LiveEvent): void {
    if (this.#sent.get(event.id)) return;
    this.#sent.set(event.id, true);
    this.#send(event);
  }

  #send(message: ServerMessage): void {
    if (this.#state === 'CLOSED' || this.ws.readyState !== this.ws.OPEN) return;
    const text = JSON.stringify(message);
    if (this.ws.bufferedAmount + Buffer.byteLength(text) > this.limits.maxBufferedBytes) {
      this.#drop('slow-consumer');
      return;
    }
    this.ws.send(text);
  }
}
