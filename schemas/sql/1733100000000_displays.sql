-- Displays and downlinks on the processor runtime (issue 6): the display reducer's state per display device, the
-- downlink queue's per-device bookkeeping, the token buckets, and the display models the encoders know.
--
-- The downlink queue itself is downlink_jobs (tenant model): at most one unconfirmed job ('queued' or 'sent') per
-- device, older ones end 'acked', 'failed' (dead-lettered) or 'superseded'.

-- Up Migration

-- The display models processors/downlink/encoders.ts encodes for (display_devices.device_type).
INSERT INTO device_types (type_code, category, name, manufacturer, model, default_f_port) VALUES
  ('kuando-busylight', 'display', 'Kuando IoT Busylight (LoRaWAN)', 'Plenom', 'Busylight IoT Omega', 15),
  ('heltec-1byte', 'display', 'One-byte parking display', 'Heltec', NULL, 1)
ON CONFLICT (type_code) DO NOTHING;

-- The ChirpStack application a display belongs to: the MQTT command topic names it. NULL: the tenant's only
-- (first) application in chirpstack_applications.
ALTER TABLE display_devices ADD COLUMN chirpstack_application_id text;

-- One row per display device: the display reducer's whole state (processors/display/reduce.ts, DisplayState, as
-- JSON), and the downlink reducer's per-device part (processors/downlink/reduce.ts, DeviceQueue without its job,
-- which is the device's unconfirmed downlink_jobs row). The row is the device's lock: every writer (the change
-- and outcome consumers, the ticks) locks it before touching the device's jobs, in (tenant_id, dev_eui) order.
CREATE TABLE display_states (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  dev_eui text NOT NULL,
  state jsonb NOT NULL CHECK (jsonb_typeof(state) = 'object'),
  -- The gateway that last transmitted to the device (txack): its token bucket applies.
  gateway_id text,
  last_confirmed_f_port integer,
  last_confirmed_payload bytea,
  last_confirmed_at timestamptz,
  -- When the display tick must look at it again (its last command unconfirmed until then); NULL: never.
  next_tick_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, dev_eui),
  FOREIGN KEY (tenant_id, dev_eui) REFERENCES display_devices (tenant_id, dev_eui) ON DELETE CASCADE,
  CHECK ((last_confirmed_f_port IS NULL) = (last_confirmed_payload IS NULL))
);
CREATE INDEX display_states_next_tick ON display_states (tenant_id, next_tick_at) WHERE next_tick_at IS NOT NULL;
ALTER TABLE display_states OWNER TO parking_owner;
-- Every column but the key is the pipeline's bookkeeping: only the first insert of a display is audited.
SELECT app_protect_tenant_table('display_states',
  '{state,gateway_id,last_confirmed_f_port,last_confirmed_payload,last_confirmed_at,next_tick_at,updated_at}');

-- What the job was for: the display command it carries (DisplayCommand.commandId), so its outcome confirms it.
ALTER TABLE downlink_jobs
  ADD COLUMN correlation_id text,
  ADD COLUMN confirmed_at timestamptz;
-- The reducer's promise, kept by the database too: one unconfirmed job per device.
CREATE UNIQUE INDEX downlink_jobs_one_pending ON downlink_jobs (tenant_id, dev_eui) WHERE status IN ('queued', 'sent');
-- The pipeline moves not_before (the backoff) and confirmed_at too: re-create the audit trigger with them as
-- telemetry columns, so a job's creation is audited and its retries are not.
DROP TRIGGER audit ON downlink_jobs;
SELECT app_protect_tenant_table('downlink_jobs',
  '{status,attempts,chirpstack_queue_id,last_error,updated_at,not_before,confirmed_at}');

-- Global bookkeeping, not tenant data: the downlink token buckets, per gateway (a gateway's duty cycle is
-- physical, whichever tenant's device it serves) and per tenant. Pipeline role only (BYPASSRLS); RLS forced with
-- no policy, like processor_offsets.
CREATE TABLE downlink_buckets (
  scope text NOT NULL CHECK (scope IN ('gateway', 'tenant')),
  key text NOT NULL,
  tokens double precision NOT NULL CHECK (tokens >= 0),
  -- Epoch ms of the last refill (TokenBucket.updatedAt).
  updated_ms bigint NOT NULL,
  PRIMARY KEY (scope, key)
);
ALTER TABLE downlink_buckets OWNER TO parking_owner;
ALTER TABLE downlink_buckets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- ------------------------------------------------------------------------------------------------------ grants
GRANT SELECT, INSERT, UPDATE ON display_states TO parking_pipeline;
GRANT SELECT ON display_states TO parking_api, parking_analyst, parking_platform_admin;
GRANT SELECT, INSERT, UPDATE ON downlink_buckets TO parking_pipeline;

-- Down Migration
DROP TABLE IF EXISTS downlink_buckets;
DROP TRIGGER IF EXISTS audit ON downlink_jobs;
SELECT app_protect_tenant_table('downlink_jobs', '{status,attempts,chirpstack_queue_id,last_error,updated_at}');
DROP INDEX IF EXISTS downlink_jobs_one_pending;
ALTER TABLE downlink_jobs DROP COLUMN IF EXISTS correlation_id, DROP COLUMN IF EXISTS confirmed_at;
DROP TABLE IF EXISTS display_states;
ALTER TABLE display_devices DROP COLUMN IF EXISTS chirpstack_application_id;
DELETE FROM device_types WHERE type_code IN ('kuando-busylight', 'heltec-1byte');
