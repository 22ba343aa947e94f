-- ChirpStack sync (issue 5, item 8): devices and gateways made or changed in the platform are created or updated in
-- ChirpStack through its gRPC API by the sync worker (api/chirpstack-sync/). chirpstack_sync_state keeps one row per
-- tenant and resource (a whole-resource cursor); this adds what it cannot hold: the state of each entity.
--
-- A trigger on sensor_devices, display_devices and gateways marks the entity's row pending (and bumps its version)
-- when a column ChirpStack keeps changes; telemetry columns (last_seen_at, ...) never do. The worker (pipeline role)
-- picks due rows, calls ChirpStack, and records the outcome: synced (synced_version = the version it sent),
-- retrying (next_attempt_at moved by the backoff, last_error kept) or failed (not retriable, or out of attempts).
-- A row changed while its call was in flight stays pending (its version moved past the one sent).

-- Up Migration

-- The device profile ChirpStack devices of this application get (CreateDeviceRequest needs one). NULL: devices of
-- the application cannot be synced, and say so in their row.
ALTER TABLE chirpstack_applications ADD COLUMN device_profile_id text;

CREATE TABLE chirpstack_sync_items (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  kind text NOT NULL CHECK (kind IN ('device', 'gateway')),
  eui text NOT NULL CHECK (eui ~ '^[0-9A-F]{16}$'),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'synced', 'retrying', 'failed')),
  -- Bumped by every relevant change; the worker records which version reached ChirpStack.
  version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  synced_version bigint NOT NULL DEFAULT 0 CHECK (synced_version >= 0),
  -- True once ChirpStack has the entity (next time: Update instead of Create).
  in_chirpstack boolean NOT NULL DEFAULT false,
  -- Failed attempts since the last success or change.
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_error_code text,
  last_error text,
  synced_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind, eui)
);
CREATE INDEX chirpstack_sync_items_due ON chirpstack_sync_items (tenant_id, next_attempt_at)
  WHERE status IN ('pending', 'retrying');
ALTER TABLE chirpstack_sync_items OWNER TO parking_owner;
-- Every column but the key is the worker's bookkeeping: only an entity's first mark is audited (its own table's
-- audit rows say what changed).
SELECT app_protect_tenant_table('chirpstack_sync_items',
  '{status,version,synced_version,in_chirpstack,attempts,next_attempt_at,last_attempt_at,last_error_code,last_error,synced_at,updated_at}');

-- Runs as the writer of the device or gateway (the API within withTenant, or the pipeline), so the row is written
-- under the same tenant and RLS as the change itself.
CREATE FUNCTION app_chirpstack_sync_mark() RETURNS trigger
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

CREATE TRIGGER chirpstack_sync AFTER INSERT ON sensor_devices
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync_update AFTER UPDATE ON sensor_devices
  FOR EACH ROW WHEN ((OLD.name, OLD.device_type, OLD.status, OLD.archived_at)
                     IS DISTINCT FROM (NEW.name, NEW.device_type, NEW.status, NEW.archived_at))
  EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync AFTER INSERT ON display_devices
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync_update AFTER UPDATE ON display_devices
  FOR EACH ROW WHEN ((OLD.name, OLD.device_type, OLD.status, OLD.archived_at, OLD.chirpstack_application_id)
                     IS DISTINCT FROM (NEW.name, NEW.device_type, NEW.status, NEW.archived_at, NEW.chirpstack_application_id))
  EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync AFTER INSERT ON gateways
  FOR EACH ROW EXECUTE FUNCTION app_chirpstack_sync_mark();
CREATE TRIGGER chirpstack_sync_update AFTER UPDATE ON gateways
  FOR EACH ROW WHEN ((OLD.name, OLD.latitude, OLD.longitude) IS DISTINCT FROM (NEW.name, NEW.latitude, NEW.longitude))
  EXECUTE FUNCTION app_chirpstack_sync_mark();

-- ------------------------------------------------------------------------------------------------------ grants
-- The API and the pipeline mark rows through the trigger; only the pipeline (the worker) records outcomes.
GRANT SELECT, INSERT, UPDATE ON chirpstack_sync_items TO parking_api, parking_pipeline;
GRANT SELECT ON chirpstack_sync_items TO parking_analyst, parking_platform_admin;

-- Down Migration
DROP TRIGGER IF EXISTS chirpstack_sync ON sensor_devices;
DROP TRIGGER IF EXISTS chirpstack_sync_update ON sensor_devices;
DROP TRIGGER IF EXISTS chirpstack_sync ON display_devices;
DROP TRIGGER IF EXISTS chirpstack_sync_update ON display_devices;
DROP TRIGGER IF EXISTS chirpstack_sync ON gateways;
DROP TRIGGER IF EXISTS chirpstack_sync_update ON gateways;
DROP FUNCTION IF EXISTS app_chirpstack_sync_mark();
DROP TABLE IF EXISTS chirpstack_sync_items;
ALTER TABLE chirpstack_applications DROP COLUMN IF EXISTS device_profile_id;
