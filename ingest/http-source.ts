import express, { type ErrorRequestHandler, type Express, type Response } from 'express';
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
 * ChirpStack v4's HTTP integration: `POST /chirpstack/events?event=up|join|status|ack|txack|log|location`, body
 * JSON or protobuf (by Content-Type, else by its first byte). Answers:
 * - 200 `{outcome, eventId}` once the event is durable in Kafka (or a duplicate of one that is, or a log event);
 * - 400 problem+json, with the code and reason, for input that is not a valid event — after it was written to
 *   the dead-letter topic, so nothing is lost;
 * - 413 problem+json for a body over `bodyLimitBytes` (refused, not stored);
 * - 503 problem+json with Retry-After when Kafka did not acknowledge within `timeoutMs`, or is known to be
 *   unreachable, or the bridge is draining. ChirpStack does not retry, so a 503 is logged on its side.
 */
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
  const signal = AbortSignal.timeout(timeoutMs);
  const handled = bridge.handle(raw, { ...options, signal });
  return Promise.race([
    handled,
    new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
    ),
  ]);
}

export function mountHttpSource(
  app: Express,
  bridge: Bridge,
  state: HttpSourceState,
  options: HttpSourceOptions,
  logger: Logger,
): void {
  const unavailable = (res: Response, code: ErrorCode, detail: string) => {
    res.setHeader('Retry-After', String(options.retryAfterSeconds));
    problem(res, 503, code, detail);
  };

  app.post(
    '/chirpstack/events',
    express.raw({ type: () => true, limit: options.bodyLimitBytes }),
    async (req, res) => {
      const receivedAt = Date.now();
      if (!state.accepting()) {
        return unavailable(
          res,
          'KAFKA_UNAVAILABLE',
          'Kafka is unavailable or the bridge is draining; retry later',
        );
      }
      const eventType = typeof req.query['event'] === 'string' ? req.query['event'] : '';
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        const result = await handleWithin(
          bridge,
          {
            source: 'HTTP',
            eventType,
            origin: req.originalUrl,
            contentType: req.get('content-type'),
            body,
            receivedAt,
          },
          {},
          options.timeoutMs,
        );
        if (result.outcome === 'dead-lettered') {
          const code = result.error?.code ?? 'PAYLOAD_INVALID';
          return problem(res, 400, code, result.error?.message ?? 'invalid event', {
            deadLettered: true,
            eventId: result.eventId,
          });
        }
        res.json({ outcome: result.outcome, eventId: result.eventId });
      } catch (error) {
        const code = isPlatformError(error) ? error.code : 'KAFKA_UNAVAILABLE';
        logger.warn({ err: error, event: eventType }, 'http event not acknowledged');
        unavailable(
          res,
          code === 'DB_UNAVAILABLE' ? code : 'KAFKA_UNAVAILABLE',
          `event not stored: ${code}; retry later`,
        );
      }
    },
  );

  app.use(bodyErrorHandler(options.bodyLimitBytes));
}

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
