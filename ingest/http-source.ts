import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Express, Response } from 'express';
import { isPlatformError, type ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Bridge, HandleOptions, HandleResult, RawEvent } from './bridge.js';

export interface HttpSourceOptions {
  /** Largest accepted body, bytes; larger ones are refused with 413 (ChirpStack events are a few KiB). */
  bodyLimitBytes: number;
  /**
   * How long a request waits for Kafka before answering 503, ms. Below ChirpStack's 5 s HTTP timeout, so
   * ChirpStack sees our answer rather than its own timeout.
   */
  timeoutMs: number;
  /** Retry-After of a 503, seconds. */
  retryAfterSeconds: number;
}

export type EventsHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HttpSourceState {
  /** False while draining or while Kafka is known to be unreachable: answer 503 at once. */
  accepting(): boolean;
}

/** An RFC 9457 problem+json answer with the platform's error code (also the shape of the v5 contract's Problem). */
export function problem(
  res: Response,
  status: number,
  code: ErrorCode,
  detail: string,
  extra: object = {},
): void {
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: `urn:parking:error:${code}`, title: code, status, detail, code, ...extra });
}

/**
 * `bridge.handle` bounded by `timeoutMs`: the signal withdraws records still queued in the sink, and the race also
 * bounds time spent before the sink (a slow database). Rejects (retriably) when the time is up.
 */
export async function handleWithin(
  bridge: Bridge,
  raw: RawEvent,
  options: Omit<HandleOptions, 'signal'>,
  timeoutMs: number,
): Promise<HandleResult> {
  // One timer per request, cleared on the answer (AbortSignal.timeout costs more and lingers until it fires).
  const controller = new AbortController();
  const { signal } = controller;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError');
      controller.abort(reason);
      reject(reason);
    }, timeoutMs);
  });
  try {
    return await Promise.race([bridge.handle(raw, { ...options, signal }), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A problem+json answer written with node:http alone (the hot route skips express' response helpers). */
function sendProblem(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  detail: string,
  extra: object = {},
  headers: Record<string, string> = {},
): void {
  sendJson(
    res,
    status,
    'application/problem+json',
    {
      type: `urn:parking:error:${code}`,
      title: code,
      status,
      detail,
      code,
      ...extra,
    },
    headers,
  );
}

function sendJson(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: object,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': `${contentType}; charset=utf-8`,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Reads a request body of at most `limit` bytes; null when it is larger (announced or actual). Bytes beyond
 * the limit are not kept; node:http discards the rest of the request once the answer is sent.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const announced = Number(req.headers['content-length']);
  if (announced > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        return resolve(null);
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

/** The `event` query parameter of a request URL; '' when absent or given more than once. */
function eventTypeOf(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return '';
  const values = new URLSearchParams(url.slice(q + 1)).getAll('event');
  return values.length === 1 ? values[0]! : '';
}

/**
 * ChirpStack v4's HTTP integration: `POST /chirpstack/events?event=up|join|status|ack|txack|log|location`, body
 * JSON or protobuf (by Content-Type, else by its first byte). Answers:
 * - 200 `{outcome, eventId}` once the event is durable in Kafka (or a duplicate of one that is, or a log event);
 * - 400 problem+json, with the code and reason, for input that is not a valid event — after it was written to
 *   the dead-letter topic, so nothing is lost;
 * - 413 problem+json for a body over `bodyLimitBytes` (refused, not stored);
 * - 503 problem+json with Retry-After when Kafka did not acknowledge within `timeoutMs`, or is known to be
 *   unreachable, or the bridge is draining. ChirpStack does not retry, so a 503 is logged on its side.
 *
 * Written against node:http alone (no body parser, no express response helpers): this route carries every HTTP
 * event, so its cost per request bounds the bridge's HTTP throughput.
 */
export function chirpstackEventsHandler(
  bridge: Bridge,
  state: HttpSourceState,
  options: HttpSourceOptions,
  logger: Logger,
): EventsHandler {
  const unavailable = (res: ServerResponse, code: ErrorCode, detail: string) =>
    sendProblem(res, 503, code, detail, {}, { 'retry-after': String(options.retryAfterSeconds) });
  const tooLarge = (res: ServerResponse) =>
    sendProblem(
      res,
      413,
      'PAYLOAD_TOO_LARGE',
      `request body exceeds the limit of ${options.bodyLimitBytes} bytes; ChirpStack events are far smaller`,
    );

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = req.url ?? '';
    const body = await readBody(req, options.bodyLimitBytes);
    if (body === null) return tooLarge(res);
    if (!state.accepting()) {
      return unavailable(
        res,
        'KAFKA_UNAVAILABLE',
        'Kafka is unavailable or the bridge is draining; retry later',
      );
    }
    const eventType = eventTypeOf(url);
    try {
      const result = await handleWithin(
        bridge,
        {
          source: 'HTTP',
          eventType,
          origin: url,
          contentType: req.headers['content-type'],
          body,
          receivedAt,
        },
        {},
        options.timeoutMs,
      );
      if (result.outcome === 'dead-lettered') {
        const code = result.error?.code ?? 'PAYLOAD_INVALID';
        return sendProblem(res, 400, code, result.error?.message ?? 'invalid event', {
          deadLettered: true,
          eventId: result.eventId,
        });
      }
      sendJson(res, 200, 'application/json', { outcome: result.outcome, eventId: result.eventId });
    } catch (error) {
      const code = isPlatformError(error) ? error.code : 'KAFKA_UNAVAILABLE';
      logger.warn({ err: error, event: eventType }, 'http event not acknowledged');
      unavailable(
        res,
        code === 'DB_UNAVAILABLE' ? code : 'KAFKA_UNAVAILABLE',
        `event not stored: ${code}; retry later`,
      );
    }
  }

  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'http event handler failed');
      if (!res.headersSent) sendProblem(res, 400, 'VALIDATION_FAILED', 'unreadable request body');
      else res.destroy();
    });
  };
}

/**
 * Mounts `POST /chirpstack/events` on the express app and returns its handler, for `serveEventsFirst`.
 */
export function mountHttpSource(
  app: Express,
  bridge: Bridge,
  state: HttpSourceState,
  options: HttpSourceOptions,
  logger: Logger,
): EventsHandler {
  const handler = chirpstackEventsHandler(bridge, state, options, logger);
  app.post('/chirpstack/events', handler);
  return handler;
}

/**
 * Serves `POST /chirpstack/events` (exactly that path, any query) on `server` ahead of its other request
 * listeners, so the busiest route skips express' routing and request/response decoration; every other request,
 * and spellings of the path only express' routing accepts (a trailing slash, other case), go on to them.
 */
export function serveEventsFirst(server: Server, handler: EventsHandler): void {
  const others = server.listeners('request') as EventsHandler[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (
      req.method === 'POST' &&
      url.startsWith(eventsPath) &&
      (url.length === eventsPath.length || url[eventsPath.length] === '?')
    ) {
      return handler(req, res);
    }
    for (const listener of others) listener.call(server, req, res);
  });
}

const eventsPath = '/chirpstack/events';

/** Answers body-parser failures of the routes mounted before it: 413 over the limit, else 4xx problem+json. */
export function bodyErrorHandler(bodyLimitBytes: number): ErrorRequestHandler {
  return (error: { type?: string; status?: number }, _req, res, next) => {
    if (error.type === 'entity.too.large') {
      return problem(
        res,
        413,
        'PAYLOAD_TOO_LARGE',
        `request body exceeds the limit of ${bodyLimitBytes} bytes; ChirpStack events are far smaller`,
      );
    }
    if (typeof error.status === 'number' && error.status >= 400 && error.status < 500) {
      return problem(res, error.status, 'VALIDATION_FAILED', 'unreadable request body');
    }
    next(error);
  };
}
