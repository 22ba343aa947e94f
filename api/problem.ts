import type { ErrorRequestHandler } from 'express';
import { isPlatformError, type ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** The one place error codes become HTTP statuses. Everything else is a 500 whose detail is not leaked. */
const statusByCode: Partial<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  PAYLOAD_INVALID: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  DB_UNAVAILABLE: 503,
  KAFKA_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
};

/** RFC 9457 problem details (`application/problem+json`) for every error an API route throws. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = isPlatformError(error) ? error : undefined;
    const status = (known && statusByCode[known.code]) ?? 500;
    if (status >= 500) logger.error({ err: error, path: req.path }, 'request failed');
    res
      .status(status)
      .type('application/problem+json')
      .json({
        type: `urn:parking:error:${(known?.code ?? 'INTERNAL').toLowerCase()}`,
        title: known && status < 500 ? known.code : 'INTERNAL',
        status,
        detail: known && status < 500 ? known.message : 'internal error',
        instance: req.originalUrl,
      });
  };
}
