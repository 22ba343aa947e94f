import { request, type Server } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer, listen } from '../lib/http/listen.js';
import { createLogger } from '../lib/logger.js';
import { PlatformError } from '../lib/errors.js';
import type { Bridge, HandleResult, RawEvent } from './bridge.js';
import { mountHttpSource, serveEventsFirst } from './http-source.js';

const options = { bodyLimitBytes: 64, timeoutMs: 200, retryAfterSeconds: 7 };

/** A real server (express app + the events fast path) in front of a bridge that answers `answer(raw)`. */
async function serve(answer: (raw: RawEvent) => Promise<HandleResult>, accepting = true) {
  const received: RawEvent[] = [];
  const bridge: Bridge = {
    handle: (raw) => {
      received.push(raw);
      return answer(raw);
    },
  };
  const app = express();
  app.get('/health', (_req, res) => void res.json({ status: 'ok' }));
  const handler = mountHttpSource(
    app,
    bridge,
    { accepting: () => accepting },
    options,
    createLogger('test', 'silent'),
  );
  const http = await listen(app, '127.0.0.1', 0);
  serveEventsFirst(http.server, handler);
  servers.push(http.server);
  return { port: http.port, received };
}
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await closeServer(server);
});

/** One request; `chunked` sends the body without a Content-Length, in two pieces. */
function call(
  port: number,
  method: string,
  path: string,
  body?: Buffer,
  { chunked = false, contentType = 'application/json' } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': contentType };
    if (body && !chunked) headers['content-length'] = body.length;
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    if (body && chunked) {
      req.write(body.subarray(0, body.length >> 1));
      req.end(body.subarray(body.length >> 1));
    } else {
      req.end(body);
    }
  });
}

const published: HandleResult = { outcome: 'published', eventId: 'e-1', tenantId: 't-1', topic: 'uplinks' };

describe('HTTP integration endpoint (POST /chirpstack/events)', () => {
  it('hands the body, event type, content type and origin to the bridge and answers 200 once it resolved', async () => {
    const { port, received } = await serve(async () => published);
    const body = Buffer.from('{"a":1}');
    const response = await call(port, 'POST', '/chirpstack/events?event=up', body);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(response.body)).toEqual({ outcome: 'published', eventId: 'e-1' });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      source: 'HTTP',
      eventType: 'up',
      origin: '/chirpstack/events?event=up',
      contentType: 'application/json',
      body,
    });
  });

  it('answers 400 problem+json with the code after a dead letter', async () => {
    const { port } = await serve(async () => ({
      outcome: 'dead-lettered',
      eventId: null,
      tenantId: null,
      topic: 'dlq',
      error: { code: 'PAYLOAD_INVALID', message: 'event body is not valid JSON' },
    }));
    const response = await call(port, 'POST', '/chirpstack/events?event=up', Buffer.from('nope'));
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(response.body)).toMatchObject({
      code: 'PAYLOAD_INVALID',
      status: 400,
      detail: 'event body is not valid JSON',
      deadLettered: true,
    });
  });

  it('refuses a body over the limit with 413, announced or streamed without a length, before the bridge', async () => {
    const { port, received } = await serve(async () => published);
    const big = Buffer.alloc(65, 0x20);
    for (const chunked of [false, true]) {
      const response = await call(port, 'POST', '/chirpstack/events?event=up', big, { chunked });
      expect(response.status).toBe(413);
      expect(JSON.parse(response.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    }
    const atLimit = await call(port, 'POST', '/chirpstack/events?event=up', Buffer.alloc(64, 0x20), {
      chunked: true,
    });
    expect(atLimit.status).toBe(200);
    expect(received).toHaveLength(1);
  });

  it('answers 503 with Retry-After when not accepting, when the bridge fails retriably, and when Kafka is too slow', async () => {
    const closed = await serve(async () => published, false);
    const failing = await serve(async () => {
      throw new PlatformError('KAFKA_UNAVAILABLE', 'down', { retriable: true });
    });
    const slow = await serve(() => new Promise(() => {}));
    for (const { port } of [closed, failing, slow]) {
      const response = await call(port, 'POST', '/chirpstack/events?event=up', Buffer.from('{}'));
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('7');
      expect(JSON.parse(response.body)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', status: 503 });
    }
    expect(closed.received).toHaveLength(0);
    expect(slow.received).toHaveLength(1);
  });

  it('takes the event type only when given once', async () => {
    const { port, received } = await serve(async () => published);
    await call(port, 'POST', '/chirpstack/events?event=up&event=join', Buffer.from('{}'));
    await call(port, 'POST', '/chirpstack/events', Buffer.from('{}'));
    expect(received.map((r) => r.eventType)).toEqual(['', '']);
  });

  it('leaves every other request to express, including spellings of the path only its router accepts', async () => {
    const { port, received } = await serve(async () => published);
    expect((await call(port, 'GET', '/health')).body).toBe('{"status":"ok"}');
    expect((await call(port, 'GET', '/chirpstack/events')).status).toBe(404);
    expect((await call(port, 'POST', '/chirpstack/events/?event=up', Buffer.from('{}'))).status).toBe(200);
    expect((await call(port, 'POST', '/chirpstack/eventsx?event=up', Buffer.from('{}'))).status).toBe(404);
    expect(received.map((r) => r.origin)).toEqual(['/chirpstack/events/?event=up']);
  });
});
