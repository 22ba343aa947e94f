import { describe, expect, it } from 'vitest';
import { expandGrafanaSql } from './macros.js';

const context = {
  from: Date.UTC(2026, 0, 5, 7),
  to: Date.UTC(2026, 0, 5, 11),
  variables: { site: ['a', "o'b"] },
};

describe('expandGrafanaSql', () => {
  it.each([
    {
      name: 'time filter on an expression',
      sql: 'WHERE $__timeFilter(o.bucket)',
      out: "WHERE o.bucket BETWEEN '2026-01-05T07:00:00.000Z' AND '2026-01-05T11:00:00.000Z'",
    },
    {
      name: 'time range bounds',
      sql: 'SELECT $__timeFrom(), $__timeTo()',
      out: "SELECT '2026-01-05T07:00:00.000Z', '2026-01-05T11:00:00.000Z'",
    },
    {
      name: 'multi-value variable, bare and braced, quotes doubled',
      sql: 'IN ($site) OR IN (${site})',
      out: "IN ('a','o''b') OR IN ('a','o''b')",
    },
  ])('$name', ({ sql, out }) => {
    expect(expandGrafanaSql(sql, context)).toBe(out);
  });

  it('refuses macros and variables it does not know', () => {
    expect(() => expandGrafanaSql('GROUP BY $__timeGroup(t, 5m)', context)).toThrow(/\$__timeGroup/);
    expect(() => expandGrafanaSql('WHERE x IN ($zone)', context)).toThrow(/\$zone/);
  });
});
