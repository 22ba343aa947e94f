import type { ZodType, ZodTypeDef } from 'zod';
import { PlatformError } from '../../lib/errors.js';

/** One invalid input field, as listed in a 400 problem's `errors`. */
export interface FieldProblem {
  in: 'path' | 'query' | 'body' | 'header';
  field: string;
  message: string;
}

/** The cause of a VALIDATION_FAILED error raised here; api/problem.ts lists its fields. */
export class InvalidFields extends Error {
  constructor(readonly fields: FieldProblem[]) {
    super(fields.map((f) => `${f.in}.${f.field}: ${f.message}`).join('; '));
    this.name = 'InvalidFields';
  }
}

export function invalid(fields: FieldProblem[]): PlatformError {
  return new PlatformError(
    'VALIDATION_FAILED',
    `invalid ${fields.map((f) => `${f.in}.${f.field}`).join(', ')}`,
    {
      cause: new InvalidFields(fields),
    },
  );
}

/** Parses one part of a request or throws VALIDATION_FAILED naming every invalid field. */
export function parseInput<T>(
  schema: ZodType<T, ZodTypeDef, unknown>,
  value: unknown,
  where: FieldProblem['in'],
): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw invalid(
    parsed.error.issues.map((issue) => ({
      in: where,
      field: issue.path.length > 0 ? issue.path.join('.') : '(root)',
      message: issue.message,
    })),
  );
}
