-- What the ingest bridge needs beyond the tenant model (issue 4):
--   * orphan_devices keeps what ChirpStack told us about an unregistered device (its ChirpStack tenant and name),
--     and the bridge's upserts of those columns are bookkeeping, not audited changes;
--   * change notifications, so the bridge's caches (DevEUI -> assignment, tenant -> webhook secrets,
--     ChirpStack application -> tenant) drop an entry as soon as its row changes, without a restart.
-- Notifications are sent on commit only (pg_notify is transactional) and identical ones in one transaction are
-- folded into one. A listener that reconnects must clear its caches: notifications sent meanwhile are lost.

-- Up Migration
ALTER TABLE orphan_devices
  ADD COLUMN chirpstack_tenant_id text,
  ADD COLUMN chirpstack_tenant_name text,
  ADD COLUMN device_name text;

-- Re-created with the new columns as telemetry: the bridge moving last_seen/counts or refreshing the name
-- ChirpStack reports is not an audited change (the first sighting, an INSERT, is).
DROP TRIGGER audit ON orphan_devices;
SELECT app_protect_tenant_table('orphan_devices', '{last_seen_at,uplink_count,last_f_port,last_rssi,last_snr,last_payload,application_id,chirpstack_tenant_id,chirpstack_tenant_name,device_name}');

-- Payload of each channel: sensor_devices_changed -> the DevEUI; webhook_secrets_changed -> the tenant id;
-- chirpstack_applications_changed -> the ChirpStack application id. An UPDATE that moves a key notifies both.
CREATE FUNCTION app_notify_change() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog
  AS $$
  DECLARE
    channel text := TG_ARGV[0];
    key_column text := TG_ARGV[1];
    old_key text := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) ->> key_column END;
    new_key text := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) ->> key_column END;
  BEGIN
    IF old_key IS NOT NULL THEN PERFORM pg_notify(channel, old_key); END IF;
    IF new_key IS NOT NULL AND new_key IS DISTINCT FROM old_key THEN PERFORM pg_notify(channel, new_key); END IF;
    RETURN NULL;
  END
  $$;
REVOKE ALL ON FUNCTION app_notify_change() FROM PUBLIC;

-- The pipeline's own bookkeeping (last_seen_at, updated_at) does not change an assignment: no notification.
CREATE TRIGGER notify_change AFTER INSERT OR DELETE OR UPDATE OF tenant_id, dev_eui, space_id, codec, status
  ON sensor_devices FOR EACH ROW EXECUTE FUNCTION app_notify_change('sensor_devices_changed', 'dev_eui');
CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE
  ON webhook_secrets FOR EACH ROW EXECUTE FUNCTION app_notify_change('webhook_secrets_changed', 'tenant_id');
CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE
  ON chirpstack_applications FOR EACH ROW
  EXECUTE FUNCTION app_notify_change('chirpstack_applications_changed', 'application_id');

-- Down Migration
DROP TRIGGER IF EXISTS notify_change ON chirpstack_applications;
DROP TRIGGER IF EXISTS notify_change ON webhook_secrets;
DROP TRIGGER IF EXISTS notify_change ON sensor_devices;
DROP FUNCTION IF EXISTS app_notify_change();
DROP TRIGGER IF EXISTS audit ON orphan_devices;
SELECT app_protect_tenant_table('orphan_devices', '{last_seen_at,uplink_count,last_f_port,last_rssi,last_snr,last_payload}');
ALTER TABLE orphan_devices
  DROP COLUMN IF EXISTS chirpstack_tenant_id,
  DROP COLUMN IF EXISTS chirpstack_tenant_name,
  DROP COLUMN IF EXISTS device_name;
