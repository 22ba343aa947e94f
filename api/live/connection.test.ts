import type { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { LiveConnection, type DropReason } from './connection.js';
import { liveEventKinds, type LiveEvent, type ServerMessage } from './envelope.js';
import { LiveHub } from './hub.js';

/** The part of a ws WebSocket a connection uses, recording what was sent. */
class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: ServerMessage[] = [];
  closed: { code: number; reason: string } | undefined;
  terminated = false;
  pings = 0;
  send(text: string) {
    this.sent.push(JSON.parse(text) as ServerMessage);
  }
  close(code: number, reason: string) {
    this.closed = { code, reason };
  }
  terminate() {
    this.terminated = true;
  }
  ping() {
    this.pings++;
  }
}

const tenantA = '11111111-1111-4111-8111-111111111111';
const tenantB = '22222222-2222-4222-8222-222222222222';

function event(n: number, tenantId = tenantA): LiveEvent {
  return {
    type: 'event',
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    kind: 'occupancy.changed',
    tenantId,
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    data: { spaceId: 's', devEui: 'd', state: 'free', previousState: 'occupied', previousDurationMs: 1 },
  };
}

function connection(limits: Partial<ConstructorParameters<typeof LiveConnection>[3]> = {}) {
  const socket = new FakeSocket();
  const drops: DropReason[] = [];
  const conn = new LiveConnection(
    tenantA,
    socket as unknown as WebSocket,
    new Set(liveEventKinds),
    { maxBufferedBytes: 1_000_000, maxPendingEvents: 10, dedupeIds: 100, closeGraceMs: 10, ...limits },
    (reason) => drops.push(reason),
  );
  const ids = () => socket.sent.map((m) => (m.type === 'event' ? m.id : m.type));
  return { socket, conn, drops, ids };
}

describe('LiveConnection', () => {
  it('holds live events during the replay, then sends replay, ready, held — each id once across the seam', () => {
    const { conn, ids } = connection();
    conn.deliver(event(3)); // committed after the replay's snapshot: held
    conn.deliver(event(2)); // in the replay too: dropped as a repeat
    conn.finishReplay([event(1), event(2)], { status: 'replayed', count: 2 });
    conn.deliver(event(4));
    conn.deliver(event(4)); // outbox repeat
    expect(ids()).toEqual([event(1).id, event(2).id, 'ready', event(3).id, event(4).id]);
    expect(conn.state).toBe('LIVE');
  });

  it('cuts off a client whose held events pass the bound while replaying, with 4008', () => {
    const { conn, socket, drops } = connection({ maxPendingEvents: 2 });
    for (let i = 1; i <= 3; i++) conn.deliver(event(i));
    expect(drops).toEqual(['slow-consumer']);
    expect(socket.closed?.code).toBe(4008);
    conn.finishReplay([], { status: 'none' });
    expect(socket.sent).toEqual([]);
  });

  it('cuts off a client whose unsent bytes would pass maxBufferedBytes, and sends nothing more', async () => {
    const { conn, socket, drops } = connection({ maxBufferedBytes: 2_000 });
    conn.finishReplay([], { status: 'none' });
    conn.deliver(event(1));
    socket.bufferedAmount = 1_900;
    conn.deliver(event(2));
    conn.deliver(event(3));
    expect(socket.sent.filter((m) => m.type === 'event')).toHaveLength(1);
    expect(drops).toEqual(['slow-consumer']);
    expect(socket.closed?.code).toBe(4008);
    await new Promise((r) => setTimeout(r, 20));
    expect(socket.terminated).toBe(true);
  });

  it('pings on each heartbeat and destroys a socket that did not answer the previous ping', () => {
    const { conn, socket, drops } = connection();
    conn.heartbeat();
    conn.alive = true; // pong
    conn.heartbeat();
    expect(socket.pings).toBe(2);
    conn.heartbeat(); // no pong since
    expect(socket.terminated).toBe(true);
    expect(drops).toEqual(['heartbeat']);
  });

  it('drops kinds the credentials may not read', () => {
    const socket = new FakeSocket();
    const conn = new LiveConnection(
      tenantA,
      socket as unknown as WebSocket,
      new Set(['device.status'] as const),
      { maxBufferedBytes: 1_000_000, maxPendingEvents: 10, dedupeIds: 100, closeGraceMs: 10 },
      () => undefined,
    );
    conn.finishReplay([event(1)], { status: 'replayed', count: 1 });
    conn.deliver(event(2));
    expect(socket.sent.map((m) => m.type)).toEqual(['ready']);
  });
});

describe('LiveHub', () => {
  it("publishes an event to its tenant's subscribers only, and forgets unsubscribed ones", () => {
    const hub = new LiveHub();
    const got: Record<string, string[]> = { a1: [], a2: [], b: [] };
    const sub = (name: string, tenantId: string) =>
      hub.subscribe({ tenantId, deliver: (e) => got[name]!.push(e.id) });
    sub('a1', tenantA);
    const unsubscribeA2 = sub('a2', tenantA);
    sub('b', tenantB);
    expect(hub.publish(event(1, tenantA))).toBe(2);
    unsubscribeA2();
    hub.publish(event(2, tenantA));
    hub.publish(event(3, tenantB));
    expect(got).toEqual({ a1: [event(1).id, event(2).id], a2: [event(1).id], b: [event(3).id] });
    expect(hub.subscribers).toBe(2);
  });
});
