/**
 * The subset of Grafana's PostgreSQL macros and template-variable interpolation the provisioned dashboards use,
 * expanded the way Grafana expands them, so tests can run a panel's SQL against the real warehouse. A macro or
 * variable not handled here is an error: a dashboard using a new one must extend this first.
 *
 * - `$__timeFilter(expr)` → `expr BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC)
 * - `$__timeFrom()`, `$__timeTo()` → `'<from>'`, `'<to>'`
 * - `$name` / `${name}` of a multi-value variable → `'v1','v2'` (Grafana's SQL quoting: `'` doubled)
 */
export interface GrafanaQueryContext {
  /** The dashboard's time range, epoch ms. */
  from: number;
  to: number;
  variables: Record<string, readonly string[]>;
}

export function expandGrafanaSql(sql: string, context: GrafanaQueryContext): string {
  const time = (ms: number) => `'${new Date(ms).toISOString()}'`;
  const expanded = sql
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      (_, expr: string) => `${expr.trim()} BETWEEN ${time(context.from)} AND ${time(context.to)}`,
    )
    .replace(/\$__timeFrom\(\)/g, time(context.from))
    .replace(/\$__timeTo\(\)/g, time(context.to));
  const unknownMacro = /\$__\w+/.exec(expanded);
  if (unknownMacro) throw new Error(`Grafana macro ${unknownMacro[0]} is not supported by expandGrafanaSql`);
  return expanded.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_, braced: string | undefined, bare: string | undefined) => {
      const name = (braced ?? bare)!;
      const values = context.variables[name];
      if (!values) throw new Error(`template variable $${name} has no value`);
      return values.map((v) => `'${v.replaceAll("'", "''")}'`).join(',');
    },
  );
}
