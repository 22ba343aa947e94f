-- Cheaper writes of the pipeline's bookkeeping (issue 6, occupancy throughput), with issue 3's audit promise kept.
--
-- 1. Audit. The promise (issue 3) is one audit_log row per mutation of tenant data. Since the tenant model, an
--    UPDATE that changes only a table's telemetry columns with no actor set (the pipeline's bookkeeping: a space's
--    state and debounce run, a device's last_seen_at, a job's attempts) is on purpose not a mutation to audit: its
--    history is elsewhere (occupancy_changes, uplinks, downlink outcomes). app_audit() found that out per row, after
--    the row's trigger event had been queued and handed to PL/pgSQL, by turning OLD and NEW into jsonb: for the
--    occupancy processor's one set-based UPDATE of a batch's spaces that cost about as much as the update itself
--    (500 rows, median of 15: 40 ms with the trigger, 18 ms without).
--    Now tables with telemetry columns get two triggers: `audit` (INSERT, DELETE) and `audit_update` (UPDATE), whose
--    WHEN condition, evaluated by the executor before anything is queued, lets a row through when an actor is set
--    or any non-telemetry column changed, compared column by column (same 500 rows: 21 ms). What is audited does
--    not change: rows that pass still go through app_audit() and its own checks (an UPDATE that changes nothing is
--    still skipped). Tables without telemetry columns keep the single trigger. The WHEN names the table's other
--    columns as they are now: a migration that adds a column to such a table re-creates the audit (DROP TRIGGER
--    audit, then app_protect_tenant_table with the telemetry columns, as migrations already do when the telemetry
--    columns change); the catalog check in lib/testing/rls-catalog.ts fails until it does. Dropping a watched
--    column fails loudly (the trigger depends on it) until the audit is re-created the same way.
-- 2. spaces fillfactor 50. The processor rewrites each space it touches once per batch; with full pages only ~18%
--    of those updates were HOT (measured: pg_stat_user_tables), the rest inserted into the three indexes. With room
--    on the page, 98% are HOT. Applies to pages written from now on (existing ones fill up as they are rewritten;
--    VACUUM FULL spaces applies it at once).

-- Up Migration

CREATE OR REPLACE FUNCTION app_protect_tenant_table(p_table regclass, p_telemetry_columns text[] DEFAULT '{}')
  RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  DECLARE
    key_column name := CASE WHEN p_table = 'tenants'::regclass THEN 'id' ELSE 'tenant_id' END;
    is_hypertable boolean;
    telemetry_args text := (SELECT string_agg(quote_literal(c), ', ') FROM unnest(p_telemetry_columns) AS c);
    old_columns text;
    new_columns text;
  BEGIN
    IF NOT EXISTS (
      SELECT 1 FROM pg_attribute WHERE attrelid = p_table AND attname = key_column AND atttypid = 'uuid'::regtype
    ) THEN
      RAISE EXCEPTION '% has no uuid column %', p_table, key_column;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', p_table);
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'tenant_isolation') THEN
      EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (%I = app_current_tenant()) WITH CHECK (%I = app_current_tenant())',
        p_table, key_column, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'analyst_read') THEN
      EXECUTE format('CREATE POLICY analyst_read ON %s FOR SELECT TO parking_analyst USING (%I = (SELECT app_analyst_tenant()))',
        p_table, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'analyst_bound') THEN
      EXECUTE format('CREATE POLICY analyst_bound ON %s AS RESTRICTIVE TO parking_analyst USING (%I = (SELECT app_analyst_tenant())) WITH CHECK (false)',
        p_table, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'platform_admin_read') THEN
      EXECUTE format('CREATE POLICY platform_admin_read ON %s FOR SELECT TO parking_platform_admin USING ((SELECT app_platform_admin_active()))',
        p_table);
    END IF;
    SELECT EXISTS (
      SELECT 1 FROM timescaledb_information.hypertables h
        JOIN pg_class c ON c.relname = h.hypertable_name
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = h.hypertable_schema
       WHERE c.oid = p_table
    ) INTO is_hypertable;
    IF is_hypertable THEN
      IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table AND tgname = 'chunk_privileges') THEN
        EXECUTE format('CREATE TRIGGER chunk_privileges AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION app_revoke_new_chunk_privileges()',
          p_table);
      END IF;
      PERFORM app_revoke_chunk_privileges(p_table);
    ELSIF p_table <> 'audit_log'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table AND tgname = 'audit') THEN
      -- A caller re-creating the audit (DROP TRIGGER audit, then this) with other telemetry columns replaces both.
      EXECUTE format('DROP TRIGGER IF EXISTS audit_update ON %s', p_table);
      IF cardinality(p_telemetry_columns) = 0 THEN
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION app_audit()',
          p_table);
      ELSE
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION app_audit(%s)',
          p_table, telemetry_args);
        -- Every other column, compared as text when its type has no equality (json). A column added later
        -- must be added here too: re-create the audit (DROP TRIGGER audit; this function); the catalog check
        -- (lib/testing/rls-catalog.ts) fails while a column is not watched.
        SELECT string_agg(format(CASE WHEN t.typname IN ('json', 'xml', 'point') THEN 'OLD.%1$I::text' ELSE 'OLD.%1$I' END, a.attname), ', ' ORDER BY a.attnum),
               string_agg(format(CASE WHEN t.typname IN ('json', 'xml', 'point') THEN 'NEW.%1$I::text' ELSE 'NEW.%1$I' END, a.attname), ', ' ORDER BY a.attnum)
          INTO old_columns, new_columns
          FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
           AND NOT (a.attname = ANY (p_telemetry_columns));
        EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s FOR EACH ROW'
          || ' WHEN (nullif(current_setting(''app.actor_type'', true), '''') IS NOT NULL'
          || ' OR ROW(%s) IS DISTINCT FROM ROW(%s))'
          || ' EXECUTE FUNCTION app_audit(%s)',
          p_table, old_columns, new_columns, telemetry_args);
      END IF;
    END IF;
  END
  $$;
REVOKE ALL ON FUNCTION app_protect_tenant_table(regclass, text[]) FROM PUBLIC;


ALTER TABLE spaces SET (fillfactor = 50);

-- Every table whose audit trigger names telemetry columns moves to the pair.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT tg.tgrelid::regclass AS tbl,
           array_remove(string_to_array(encode(tg.tgargs, 'escape'), '\000'), '') AS telemetry
      FROM pg_trigger tg
     WHERE tg.tgname = 'audit' AND NOT tg.tgisinternal AND tg.tgnargs > 0
  LOOP
    EXECUTE format('DROP TRIGGER audit ON %s', t.tbl);
    PERFORM app_protect_tenant_table(t.tbl, t.telemetry);
  END LOOP;
END
$$;

-- Down Migration

ALTER TABLE spaces RESET (fillfactor);

CREATE OR REPLACE FUNCTION app_protect_tenant_table(p_table regclass, p_telemetry_columns text[] DEFAULT '{}')
  RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  DECLARE
    key_column name := CASE WHEN p_table = 'tenants'::regclass THEN 'id' ELSE 'tenant_id' END;
    is_hypertable boolean;
  BEGIN
    IF NOT EXISTS (
      SELECT 1 FROM pg_attribute WHERE attrelid = p_table AND attname = key_column AND atttypid = 'uuid'::regtype
    ) THEN
      RAISE EXCEPTION '% has no uuid column %', p_table, key_column;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', p_table);
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'tenant_isolation') THEN
      EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (%I = app_current_tenant()) WITH CHECK (%I = app_current_tenant())',
        p_table, key_column, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'analyst_read') THEN
      EXECUTE format('CREATE POLICY analyst_read ON %s FOR SELECT TO parking_analyst USING (%I = (SELECT app_analyst_tenant()))',
        p_table, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'analyst_bound') THEN
      EXECUTE format('CREATE POLICY analyst_bound ON %s AS RESTRICTIVE TO parking_analyst USING (%I = (SELECT app_analyst_tenant())) WITH CHECK (false)',
        p_table, key_column);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p_table AND polname = 'platform_admin_read') THEN
      EXECUTE format('CREATE POLICY platform_admin_read ON %s FOR SELECT TO parking_platform_admin USING ((SELECT app_platform_admin_active()))',
        p_table);
    END IF;
    SELECT EXISTS (
      SELECT 1 FROM timescaledb_information.hypertables h
        JOIN pg_class c ON c.relname = h.hypertable_name
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = h.hypertable_schema
       WHERE c.oid = p_table
    ) INTO is_hypertable;
    IF is_hypertable THEN
      IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table AND tgname = 'chunk_privileges') THEN
        EXECUTE format('CREATE TRIGGER chunk_privileges AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION app_revoke_new_chunk_privileges()',
          p_table);
      END IF;
      PERFORM app_revoke_chunk_privileges(p_table);
    ELSIF p_table <> 'audit_log'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table AND tgname = 'audit') THEN
      EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION app_audit(%s)',
        p_table, (SELECT string_agg(quote_literal(c), ', ') FROM unnest(p_telemetry_columns) AS c));
    END IF;
  END
  $$;
REVOKE ALL ON FUNCTION app_protect_tenant_table(regclass, text[]) FROM PUBLIC;


DO $$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT tg.tgrelid::regclass AS tbl,
           array_remove(string_to_array(encode(tg.tgargs, 'escape'), '\000'), '') AS telemetry
      FROM pg_trigger tg
     WHERE tg.tgname = 'audit_update' AND NOT tg.tgisinternal
  LOOP
    EXECUTE format('DROP TRIGGER audit_update ON %s', t.tbl);
    EXECUTE format('DROP TRIGGER audit ON %s', t.tbl);
    PERFORM app_protect_tenant_table(t.tbl, t.telemetry);
  END LOOP;
END
$$;
