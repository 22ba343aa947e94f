import { describe, expect, it } from 'vitest';
import { isPlatformError } from '../../lib/errors.js';
import { listQuery, pageSql, toPage } from './pagination.js';

const columns = { name: 'name', createdAt: 'created_at' } as const;
const query = listQuery(['name', 'createdAt'], 'name');

describe('list paging', () => {
  it('defaults, and refuses unknown sorts and out-of-range limits', () => {
    expect(query.parse({})).toEqual({ limit: 50, sort: 'name' });
    expect(query.safeParse({ sort: 'password' }).success).toBe(false);
    expect(query.safeParse({ limit: '201' }).success).toBe(false);
  });

  it('orders by the whitelisted column and id, and a cursor continues after the last row', () => {
    const first = pageSql(columns, { limit: 2, sort: '-createdAt' }, 3);
    expect(first).toMatchObject({ after: 'TRUE', orderBy: 'created_at DESC, id DESC', fetch: 3, params: [] });
    const rows = [
      { id: 'c', sort_key: '3' },
      { id: 'b', sort_key: '2' },
      { id: 'a', sort_key: '1' },
    ];
    const page = toPage(rows, { limit: 2, sort: '-createdAt' }, (r) => r.id);
    expect(page.data).toEqual(['c', 'b']);
    const next = pageSql(columns, { limit: 2, sort: '-createdAt', cursor: page.page.nextCursor! }, 3);
    expect(next).toMatchObject({ after: '(created_at, id) < ($3, $4)', params: ['2', 'b'] });
  });

  it('refuses a cursor made for another sort or not made here', () => {
    const cursor = toPage(
      [
        { id: 'a', sort_key: 'x' },
        { id: 'b', sort_key: 'y' },
      ],
      { limit: 1, sort: 'name' },
      (r) => r,
    ).page.nextCursor!;
    for (const bad of [
      { sort: '-name' as const, cursor },
      { sort: 'name' as const, cursor: 'not-base64-json' },
    ]) {
      let error: unknown;
      try {
        pageSql(columns, { limit: 1, ...bad }, 1);
      } catch (e) {
        error = e;
      }
      expect(isPlatformError(error, 'VALIDATION_FAILED')).toBe(true);
    }
  });
});
