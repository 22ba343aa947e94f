import { invalid } from './validation.js';
import { z } from './zod.js';

/**
 * The one way lists are paged, filtered and sorted. Query: `limit` (1..200, default 50), `cursor` (opaque, from
 * the previous page's `page.nextCursor`), `sort` (a listed key, `-key` for descending). Paging is keyset on
 * (sort column, id), so pages stay stable while rows are added. Filters are per resource, added to the same
 * query schema with `.extend()` and written as static SQL (`$n IS NULL OR column = $n`).
 */
export function listQuery<K extends string>(sortKeys: readonly [K, ...K[]], defaultSort: K | `-${K}`) {
  const values = [...sortKeys, ...sortKeys.map((k) => `-${k}` as const)] as [K | `-${K}`, ...(K | `-${K}`)[]];
  return z.object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().max(512).optional(),
    sort: z.enum(values).default(defaultSort),
  });
}

export const pageSchema = z.object({
  nextCursor: z
    .string()
    .nullable()
    .openapi({ description: 'pass as `cursor` for the next page; null on the last' }),
  limit: z.number().int(),
  sort: z.string(),
});

export function pageOf<T extends z.ZodTypeAny>(item: T) {
  return z.object({ data: z.array(item), page: pageSchema });
}

interface Cursor {
  s: string;
  k: string;
  id: string;
}

/** SQL pieces for one page. `columns` maps sort keys to constant SQL expressions, never to caller text. */
export interface PageSql {
  /** `<expr>::text AS sort_key`: select it so the next cursor can be made. */
  sortKey: string;
  /** `TRUE` or the keyset condition using parameters `$first`, `$first+1`. */
  after: string;
  orderBy: string;
  /** limit + 1: one extra row tells whether there is a next page. */
  fetch: number;
  params: unknown[];
}

export function pageSql<K extends string>(
  columns: Record<K, string>,
  query: { limit: number; cursor?: string | undefined; sort: K | `-${K}` },
  firstParam: number,
  idColumn = 'id',
): PageSql {
  const descending = query.sort.startsWith('-');
  const key = (descending ? query.sort.slice(1) : query.sort) as K;
  const column = columns[key];
  const direction = descending ? 'DESC' : 'ASC';
  const base = {
    sortKey: `${column}::text AS sort_key`,
    orderBy: `${column} ${direction}, ${idColumn} ${direction}`,
  };
  if (!query.cursor) return { ...base, after: 'TRUE', fetch: query.limit + 1, params: [] };
  const cursor = decodeCursor(query.cursor);
  if (cursor.s !== query.sort)
    throw invalid([{ in: 'query', field: 'cursor', message: 'the cursor belongs to another sort' }]);
  return {
    ...base,
    after: `(${column}, ${idColumn}) ${descending ? '<' : '>'} ($${firstParam}, $${firstParam + 1})`,
    fetch: query.limit + 1,
    params: [cursor.k, cursor.id],
  };
}

/** Cuts the extra row and makes the next cursor from the last row kept. */
export function toPage<R extends { sort_key: string; id: string | number }, T>(
  rows: R[],
  query: { limit: number; sort: string },
  view: (row: R) => T,
): { data: T[]; page: z.infer<typeof pageSchema> } {
  const kept = rows.slice(0, query.limit);
  const last = kept[kept.length - 1];
  const nextCursor =
    rows.length > query.limit && last
      ? encodeCursor({ s: query.sort, k: last.sort_key, id: String(last.id) })
      : null;
  return { data: kept.map(view), page: { nextCursor, limit: query.limit, sort: query.sort } };
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

const cursorSchema = z.object({ s: z.string(), k: z.string(), id: z.string() });

function decodeCursor(text: string): Cursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
  } catch {
    throw invalid([{ in: 'query', field: 'cursor', message: 'malformed cursor' }]);
  }
}
