/**
 * The platform's one error type. Every failure that crosses a module boundary is a PlatformError with a code
 * from `errorCodes`; `retriable` tells a consumer whether to back off and retry (true) or dead-letter (false),
 * and the API maps codes to HTTP statuses in one place (api/problem.ts).
 */
export const errorCodes = [
  'CONFIG_INVALID',
  'PAYLOAD_TOO_LARGE',
  'PAYLOAD_INVALID',
  'EVENT_UNSUPPORTED',
  'DECODE_FAILED',
  'DEVICE_UNKNOWN',
  'DEVICE_DECOMMISSIONED',
  'ENCODE_FAILED',
  'DOWNLINK_UNCONFIRMED',
  'SCHEMA_REGISTRY_UNAVAILABLE',
  'KAFKA_UNAVAILABLE',
  'DB_UNAVAILABLE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'VALIDATION_FAILED',
  'CONFLICT',
  'RATE_LIMITED',
  'SHUTTING_DOWN',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class PlatformError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlatformError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

export function isPlatformError(error: unknown, code?: ErrorCode): error is PlatformError {
  return error instanceof PlatformError && (code === undefined || error.code === code);
}

/** Wraps anything thrown into a PlatformError, keeping an existing code. */
export function toPlatformError(
  error: unknown,
  fallback: ErrorCode = 'INTERNAL',
  retriable = false,
): PlatformError {
  if (error instanceof PlatformError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PlatformError(fallback, message, { cause: error, retriable });
}
