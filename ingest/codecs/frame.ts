import { PlatformError } from '../../lib/errors.js';

/** Throws DECODE_FAILED unless the payload has at least `min` bytes; shared by the codecs' length checks. */
export function requireLength(codec: string, fPort: number, payload: Buffer, min: number): void {
  if (payload.length < min) {
    throw new PlatformError(
      'DECODE_FAILED',
      `${codec}: fPort ${fPort} frame has ${payload.length} bytes (want at least ${min})`,
    );
  }
}

export function unknownPort(codec: string, fPort: number, known: readonly number[]): PlatformError {
  return new PlatformError(
    'DECODE_FAILED',
    `${codec}: unexpected fPort ${fPort} (known: ${known.join(', ')})`,
  );
}

/** Reads byte `i`, which the caller has checked exists (requireLength); 0 keeps the type a number. */
export function byteAt(payload: Buffer, i: number): number {
  return payload[i] ?? 0;
}
