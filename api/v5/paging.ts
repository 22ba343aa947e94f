import { toPage } from '../http/pagination.js';
import { invalid } from '../http/validation.js';
import { z } from '../http/zod.js';

/**
 * v5 list parameters over the v6 pager: `limit` 1..1000 (default 100), `offset`, `cursor` (the v6 keyset cursor,
 * from `next_cursor`) and `sort` (comma-separated snake_case fields, `-` for descending; the first field
 * decides, as v6 sorts on one key plus the id). Answers `{ items, limit, offset, has_more, next_cursor }`.
 */
export const v5ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  cursor: z.string().max(512).optional(),
  sort: z.string().max(200).optional(),
});
export type V5ListQuery = z.infer<typeof v5ListQuery>;

/** The v6 sort for a v5 `sort`, through `keys` (v5 field -> v6 sort key). */
export function v5Sort<K extends string>(
  sort: string | undefined,
  keys: Record<string, K>,
  fallback: K | `-${K}`,
): K | `-${K}` {
  const first = sort?.split(',')[0]?.trim();
  if (!first) return fallback;
  const descending = first.startsWith('-');
  const key = keys[descending ? first.slice(1) : first];
  if (!key)
    throw invalid([
      {
        in: 'query',
        field: 'sort',
        message: `sortable by ${Object.keys(keys).join(', ')} (prefix - for descending)`,
      },
    ]);
  return descending ? `-${key}` : key;
}

export function v5Page<R extends { sort_key: string; id: string | number }>(
  rows: R[],
  query: V5ListQuery,
  sort: string,
  view: (row: R) => Record<string, unknown>,
) {
  const page = toPage(rows, { limit: query.limit, sort }, view);
  return {
    items: page.data,
    limit: query.limit,
    offset: query.offset,
    has_more: page.page.nextCursor !== null,
    next_cursor: page.page.nextCursor,
  };
}
