import type { ErrorRequestHandler, Request } from 'express';
import { isPlatformError, type ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { InvalidFields, type FieldProblem } from './http/validation.js';
import { z } from './http/zod.js';

/** The one place error codes become HTTP statuses. Everything else is a 500 whose detail is not leaked. */
const statusByCode: Partial<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  PAYLOAD_INVALID: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  DB_UNAVAILABLE: 503,
  KAFKA_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
};

export function statusOf(code: ErrorCode): number {
  return statusByCode[code] ?? 500;
}

/** RFC 9457 problem details, as documented in the OpenAPI document (components.schemas.Problem). */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    requestId: z.string().optional(),
    errors: z
      .array(
        z.object({ in: z.enum(['path', 'query', 'body', 'header']), field: z.string(), message: z.string() }),
      )
      .optional(),
  })
  .openapi('Problem');

/** What a problem response says about an error, whatever its field names (v6 camelCase, v5 snake_case). */
export interface ProblemFacts {
  type: string;
  title: string;
  status: number;
  detail: string;
  fields?: FieldProblem[];
}

/** Classifies an error thrown by a route; logs 5xx (their detail is not leaked). */
export function problemFacts(error: unknown, logger: Logger, req: Request): ProblemFacts {
  const known = isPlatformError(error) ? error : bodyParserError(error);
  const status = known ? statusOf(known.code) : 500;
  if (status >= 500) logger.error({ err: error, path: req.path, requestId: req.requestId }, 'request failed');
  const fields = known?.cause instanceof InvalidFields ? known.cause.fields : undefined;
  return {
    type: `urn:parking:error:${(known?.code ?? 'INTERNAL').toLowerCase()}`,
    title: known && status < 500 ? known.code : 'INTERNAL',
    status,
    detail: known && status < 500 ? known.message : 'internal error',
    ...(fields ? { fields } : {}),
  };
}

/** `application/problem+json` for every error an API route throws; 400s list the invalid fields. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const { fields, ...facts } = problemFacts(error, logger, req);
    res
      .status(facts.status)
      .type('application/problem+json')
      .json({
        ...facts,
        instance: req.originalUrl,
        requestId: req.requestId,
        ...(fields ? { errors: fields } : {}),
      } satisfies z.infer<typeof problemSchema>);
  };
}

/** express.json() failures (malformed or oversized bodies) carry an HTTP status of their own. */
function bodyParserError(error: unknown): { code: ErrorCode; message: string; cause?: unknown } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status } = error as { type?: unknown; status?: unknown };
  if (type === 'entity.too.large') return { code: 'PAYLOAD_TOO_LARGE', message: 'request body too large' };
  if (typeof type === 'string' && status === 400)
    return { code: 'PAYLOAD_INVALID', message: 'malformed JSON body' };
  return undefined;
}
