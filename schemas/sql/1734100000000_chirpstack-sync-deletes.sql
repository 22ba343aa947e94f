-- ChirpStack sync of deletions (issue 5, item 8): deleting a sensor, display or gateway in the platform marks its
-- chirpstack_sync_items row pending like any other change; the worker (api/chirpstack-sync/) finds the entity gone
-- and deletes it from ChirpStack, with the same status, attempts, backoff and errors as creates and updates. The
-- row stays (status synced, in_chirpstack false once ChirpStack no longer has it): registering the EUI again
-- bumps its version and creates it anew.

-- Up Migration
CREATE OR REPLACE FUNCTION app_chirpstack_sync_mark() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  DECLARE
    v_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    v_kind text := CASE WHEN TG_TABLE_NAME = 'gateways' THEN 'gateway' ELSE 'device' END;
    v_eui text := CASE WHEN TG_TABLE_NAME = 'gateways' THEN v_row ->> 'gw_eui' ELSE v_row ->> 'dev_eui' END;
  BEGIN
    INSERT INTO chirpstack_sync_items AS i (tenant_id, kind, eui)
    VALUES ((v_row ->> 'tenant_id')::uuid, v_kind, v_eui)
    ON CONFLICT (tenant_id, kind, eui) DO UPDATE
      SET version = i.version + 1, status = 'pending', attempts = 0, next_attempt_at = now(),
          updated_at = now();
    RETURN NULL;
  END
  $$;

CREATE TRIGGER chirpstack_sync_delete AFTER DELETE ON sensor_devices
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync_delete AFTER DELETE ON display_devices
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync_delete AFTER DELETE ON gateways
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();

-- Down Migration
DROP TRIGGER IF EXISTS chirpstack_sync_delete ON sensor_devices;
DROP TRIGGER IF EXISTS chirpstack_sync_delete ON display_devices;
DROP TRIGGER IF EXISTS chirpstack_sync_delete ON gateways;
CREATE OR REPLACE FUNCTION app_chirpstack_sync_mark() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  DECLARE
    v_kind text := CASE WHEN TG_TABLE_NAME = 'gateways' THEN 'gateway' ELSE 'device' END;
    v_eui text := CASE WHEN TG_TABLE_NAME = 'gateways' THEN to_jsonb(NEW) ->> 'gw_eui' ELSE to_jsonb(NEW) ->> 'dev_eui' END;
  BEGIN
    INSERT INTO chirpstack_sync_items AS i (tenant_id, kind, eui)
    VALUES (NEW.tenant_id, v_kind, v_eui)
    ON CONFLICT (tenant_id, kind, eui) DO UPDATE
      SET version = i.version + 1, status = 'pending', attempts = 0, next_attempt_at = now(),
          updated_at = now();
    RETURN NULL;
  END
  $$;
