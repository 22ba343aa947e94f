import express, { type Express, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { isPlatformError, type ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Bridge } from './bridge.js';
import {
  bodyErrorHandler,
  handleWithin,
  problem,
  type HttpSourceOptions,
  type HttpSourceState,
} from './http-source.js';
import type { IngestMetrics } from './metrics.js';
import { parseSignature, signatureHeader, signatureMatches } from './webhook-signature.js';

/** Who may sign a webhook about a device: the device's tenant, else the tenant owning its ChirpStack application. */
export interface WebhookAuthority {
  tenantOfDevice(devEui: string): Promise<string | null>;
  tenantOfApplication(applicationId: string): Promise<string | null>;
  /** The tenant's secrets valid now (current, and previous until it expires). */
  secretsOf(tenantId: string): Promise<Buffer[]>;
}

export const webhookV5Path = '/api/v1/uplink';

const devEuiPattern = /^[0-9a-f]{16}$/i;

/** DevEUI and application id of a ChirpStack JSON uplink, read only to find who must have signed it. */
function subjectOf(body: Buffer): { devEui: string | null; applicationId: string | null } {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {
      deviceInfo?: { devEui?: unknown; applicationId?: unknown };
    };
    const info = parsed?.deviceInfo;
    const devEui = typeof info?.devEui === 'string' && devEuiPattern.test(info.devEui) ? info.devEui : null;
    const applicationId =
      typeof info?.applicationId === 'string' && info.applicationId ? info.applicationId : null;
    return { devEui: devEui?.toUpperCase() ?? null, applicationId };
  } catch {
    return { devEui: null, applicationId: null };
  }
}

/**
 * The legacy v5 webhook `POST /api/v1/uplink` (`../shared/reference/v5-openapi.json`): a ChirpStack v4 JSON `up`
 * event signed with `X-Chirpstack-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body). Answers:
 * - 401 problem+json when the signature is missing or malformed, when the event names no device or application
 *   of a tenant with a webhook secret, or when it matches neither that tenant's current nor its previous
 *   (unexpired) secret. Nothing is published for a refused request and the bridge never sees it (counted in
 *   `ingest_webhook_refused_total{reason}`). The v5 system logged and accepted unsigned requests; we refuse them.
 * - 202 (no body) once the event is durable in Kafka (source WEBHOOK_V5), or is a duplicate of one that is;
 * - beyond the v5 contract, as on the HTTP integration endpoint: 400 problem+json for a signed but invalid
 *   event (after dead-lettering it), 413 for a body over the limit, 503 with Retry-After while Kafka or the
 *   database is unavailable.
 * Problems carry `request_id` (X-Request-Id, or a new one).
 */
export function mountWebhookV5Source(
  app: Express,
  bridge: Bridge,
  authority: WebhookAuthority,
  state: HttpSourceState,
  options: HttpSourceOptions,
  metrics: IngestMetrics,
  logger: Logger,
): void {
  const refuse = (req: Request, res: Response, reason: string, detail: string) => {
    metrics.webhookRefused.inc({ reason });
    logger.warn({ reason, ip: req.ip }, 'webhook refused');
    problem(res, 401, 'UNAUTHENTICATED', detail, { request_id: res.getHeader('x-request-id') });
  };
  const unavailable = (res: Response, code: ErrorCode, detail: string) => {
    res.setHeader('Retry-After', String(options.retryAfterSeconds));
    problem(res, 503, code, detail, { request_id: res.getHeader('x-request-id') });
  };

  app.post(
    webhookV5Path,
    (req, res, next) => {
      res.setHeader('X-Request-Id', req.get('x-request-id') ?? randomUUID());
      next();
    },
    express.raw({ type: () => true, limit: options.bodyLimitBytes }),
    async (req, res) => {
      const receivedAt = Date.now();
      const digest = parseSignature(req.get(signatureHeader));
      if (!digest) {
        return refuse(req, res, 'missing', `${signatureHeader} header missing or not sha256=<hex>`);
      }
      if (!state.accepting()) {
        return unavailable(
          res,
          'KAFKA_UNAVAILABLE',
          'Kafka is unavailable or the bridge is draining; retry later',
        );
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        const subject = subjectOf(body);
        const tenantId =
          (subject.devEui ? await authority.tenantOfDevice(subject.devEui) : null) ??
          (subject.applicationId ? await authority.tenantOfApplication(subject.applicationId) : null);
        if (!tenantId) {
          return refuse(req, res, 'unattributed', 'the event names no device or application of a tenant');
        }
        if (!signatureMatches(body, digest, await authority.secretsOf(tenantId))) {
          return refuse(req, res, 'mismatch', 'signature does not match a webhook secret of the tenant');
        }
        const result = await handleWithin(
          bridge,
          {
            source: 'WEBHOOK_V5',
            eventType: 'up',
            origin: req.originalUrl,
            contentType: 'application/json',
            body,
            receivedAt,
          },
          { devEuiHint: subject.devEui },
          options.timeoutMs,
        );
        if (result.outcome === 'dead-lettered') {
          const code = result.error?.code ?? 'PAYLOAD_INVALID';
          return problem(res, 400, code, result.error?.message ?? 'invalid event', {
            deadLettered: true,
            eventId: result.eventId,
            request_id: res.getHeader('x-request-id'),
          });
        }
        res.status(202).end();
      } catch (error) {
        const code = isPlatformError(error) ? error.code : 'KAFKA_UNAVAILABLE';
        logger.warn({ err: error }, 'webhook event not acknowledged');
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
