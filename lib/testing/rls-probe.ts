import { randomUUID } from 'node:crypto';
import type pg from 'pg';

/**
 * Generic row operations for the RLS suite, as SECURITY INVOKER functions in a scratch schema created per run
 * (dropped by `drop`): they run with the privileges and policies of whoever calls them (parking_api, the
 * platform-admin role, a superuser). Table and column names are quoted with format(%s regclass / %I) inside
 * PL/pgSQL; TypeScript passes them as parameters only.
 */
export interface RlsProbe {
  schema: string;
  drop(): Promise<void>;
}

type Queryable = Pick<pg.Client, 'query'>;

export async function createRlsProbe(superuser: pg.Client): Promise<RlsProbe> {
  const schema = `rls_probe_${randomUUID().slice(0, 8)}`;
  await superuser.query('BEGIN');
  await superuser.query("SELECT set_config('probe.schema', $1, true)", [schema]);
  await superuser.query(`DO $do$
    DECLARE s text := current_setting('probe.schema');
    BEGIN
      EXECUTE format('CREATE SCHEMA %I', s);
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC', s);
      EXECUTE format($f$CREATE FUNCTION %I.insert_row(p_table regclass, p_row jsonb) RETURNS jsonb
        LANGUAGE plpgsql AS $b$
        DECLARE cols text; result jsonb;
        BEGIN
          SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(p_row) AS k;
          EXECUTE format('INSERT INTO %%s AS t (%%s) SELECT %%s FROM jsonb_populate_record(NULL::%%s, $1) RETURNING to_jsonb(t)',
            p_table, cols, cols, p_table) INTO result USING p_row;
          RETURN result;
        END $b$$f$, s);
      EXECUTE format($f$CREATE FUNCTION %I.visible_tenants(p_table regclass, p_key name) RETURNS uuid[]
        LANGUAGE plpgsql AS $b$
        DECLARE result uuid[];
        BEGIN
          EXECUTE format('SELECT coalesce(array_agg(DISTINCT %%I), ''{}'') FROM %%s', p_key, p_table) INTO result;
          RETURN result;
        END $b$$f$, s);
      EXECUTE format($f$CREATE FUNCTION %I.touch_rows(p_table regclass, p_key name, p_tenant uuid) RETURNS bigint
        LANGUAGE plpgsql AS $b$
        DECLARE n bigint;
        BEGIN
          EXECUTE format('UPDATE %%s SET %%I = %%I WHERE %%I = $1', p_table, p_key, p_key, p_key) USING p_tenant;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $b$$f$, s);
      EXECUTE format($f$CREATE FUNCTION %I.delete_rows(p_table regclass, p_match jsonb) RETURNS bigint
        LANGUAGE plpgsql AS $b$
        DECLARE n bigint;
        BEGIN
          EXECUTE format('DELETE FROM %%s AS t WHERE to_jsonb(t) @> $1', p_table) USING p_match;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $b$$f$, s);
      EXECUTE format($f$CREATE FUNCTION %I.count_rows(p_table regclass, p_match jsonb) RETURNS bigint
        LANGUAGE plpgsql AS $b$
        DECLARE n bigint;
        BEGIN
          EXECUTE format('SELECT count(*) FROM %%s AS t WHERE to_jsonb(t) @> $1', p_table) INTO n USING p_match;
          RETURN n;
        END $b$$f$, s);
      EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO PUBLIC', s);
    END $do$`);
  await superuser.query('COMMIT');
  return {
    schema,
    drop: async () => {
      await superuser.query("SELECT set_config('probe.schema', $1, false)", [schema]);
      await superuser.query(
        "DO $do$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', current_setting('probe.schema')); END $do$",
      );
    },
  };
}

const statements = {
  insertRow: 'SELECT insert_row($1, $2) AS result',
  visibleTenants: 'SELECT visible_tenants($1, $2) AS result',
  touchRows: 'SELECT touch_rows($1, $2, $3) AS result',
  deleteRows: 'SELECT delete_rows($1, $2) AS result',
  countRows: 'SELECT count_rows($1, $2) AS result',
} as const;

/**
 * The probe's functions on `db`. The probe schema goes first on the session's search_path (the probe's pools
 * and clients are test-only, so the setting outliving a transaction is harmless there).
 */
export function probeCalls(db: Queryable, probe: RlsProbe) {
  const call = async <T>(statement: keyof typeof statements, args: unknown[]): Promise<T> => {
    await db.query("SELECT set_config('search_path', $1, false)", [`${probe.schema}, public`]);
    const { rows } = await db.query<{ result: T }>(statements[statement], args);
    return rows[0]!.result;
  };
  return {
    insertRow: (table: string, row: Record<string, unknown>) =>
      call<Record<string, unknown>>('insertRow', [table, JSON.stringify(row)]),
    visibleTenants: (table: string, key: string) => call<string[]>('visibleTenants', [table, key]),
    touchRows: async (table: string, key: string, tenantId: string) =>
      Number(await call<string>('touchRows', [table, key, tenantId])),
    deleteRows: async (table: string, match: Record<string, unknown>) =>
      Number(await call<string>('deleteRows', [table, JSON.stringify(match)])),
    countRows: async (table: string, match: Record<string, unknown>) =>
      Number(await call<string>('countRows', [table, JSON.stringify(match)])),
  };
}
