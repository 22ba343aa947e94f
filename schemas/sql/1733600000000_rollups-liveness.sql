-- Rollups and liveness on the processor runtime (issue 6, items 4 and 5): the rollup reducer's state per site,
-- the rollup tables the tenant model did not have yet (site 5-minute, device health 5-minute and hourly), the
-- liveness reducer's state per device and gateway, and the liveness alerts.
--
-- Rollups are computed in-stream (processors/rollups/reduce.ts) because continuous aggregates are refused on RLS
-- tables. The reducer's occupancy rate is occupied time / observed time (time before a space's first report is
-- unobserved, not free): observed_seconds is stored beside it so the rate can be re-weighted, and the median
-- dwell beside the sum and count.

-- Up Migration

-- One row per site: the rollup reducer's whole state (RollupState as JSON), so a restarted or rebalanced
-- processor corrects late events from the same history. The row is the site's lock. next_close_at: when the
-- rollup tick must close the site's next 5-minute bucket.
CREATE TABLE rollup_states (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  site_id uuid NOT NULL,
  state jsonb NOT NULL CHECK (jsonb_typeof(state) = 'object'),
  next_close_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, site_id),
  FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX rollup_states_next_close ON rollup_states (tenant_id, next_close_at) WHERE next_close_at IS NOT NULL;

CREATE TABLE site_occupancy_5m (
  tenant_id uuid NOT NULL,
  bucket timestamptz NOT NULL,
  site_id uuid NOT NULL,
  spaces integer NOT NULL CHECK (spaces >= 0),
  occupancy_rate real NOT NULL CHECK (occupancy_rate BETWEEN 0 AND 1),
  peak_occupied integer,
  arrivals integer NOT NULL DEFAULT 0,
  dwell_seconds_sum double precision NOT NULL DEFAULT 0,
  dwell_count integer NOT NULL DEFAULT 0,
  occupied_seconds double precision,
  observed_seconds double precision,
  dwell_median_seconds double precision,
  PRIMARY KEY (tenant_id, site_id, bucket)
);
SELECT create_hypertable('site_occupancy_5m', by_range('bucket', INTERVAL '7 days'), create_default_indexes => false);

ALTER TABLE space_occupancy_5m
  ADD COLUMN observed_seconds double precision,
  ADD COLUMN dwell_median_seconds double precision;
ALTER TABLE space_occupancy_1h
  ADD COLUMN observed_seconds double precision,
  ADD COLUMN dwell_median_seconds double precision;
-- peak_occupied is not computed by the reducer yet: NULL (unknown) rather than a misleading 0.
ALTER TABLE site_occupancy_1h
  ALTER COLUMN peak_occupied DROP NOT NULL,
  ALTER COLUMN peak_occupied DROP DEFAULT,
  ADD COLUMN occupied_seconds double precision,
  ADD COLUMN observed_seconds double precision,
  ADD COLUMN dwell_median_seconds double precision;

-- Device health per bucket (processors/rollups/reduce.ts, HealthRow), from the uplinks.
CREATE TABLE device_health_5m (
  tenant_id uuid NOT NULL,
  bucket timestamptz NOT NULL,
  dev_eui text NOT NULL,
  uplinks integer NOT NULL CHECK (uplinks >= 0),
  last_seen_at timestamptz NOT NULL,
  battery_volts double precision,
  min_battery_volts double precision,
  min_rssi double precision,
  mean_rssi double precision,
  min_snr double precision,
  mean_snr double precision,
  PRIMARY KEY (tenant_id, dev_eui, bucket)
);
SELECT create_hypertable('device_health_5m', by_range('bucket', INTERVAL '7 days'), create_default_indexes => false);

CREATE TABLE device_health_1h (
  tenant_id uuid NOT NULL,
  bucket timestamptz NOT NULL,
  dev_eui text NOT NULL,
  uplinks integer NOT NULL CHECK (uplinks >= 0),
  last_seen_at timestamptz NOT NULL,
  battery_volts double precision,
  min_battery_volts double precision,
  min_rssi double precision,
  mean_rssi double precision,
  min_snr double precision,
  mean_snr double precision,
  PRIMARY KEY (tenant_id, dev_eui, bucket)
);
SELECT create_hypertable('device_health_1h', by_range('bucket', INTERVAL '30 days'), create_default_indexes => false);

-- The uplink interval a sensor promises (its reporting period); NULL: the processors' default
-- (LIVENESS_DEVICE_INTERVAL_MS). A device silent for this plus a grace raises a liveness alert.
ALTER TABLE sensor_devices ADD COLUMN expected_uplink_interval_s integer CHECK (expected_uplink_interval_s > 0);

-- One row per device or gateway heard: the liveness reducer's state (LivenessState as JSON) and the policy it
-- was last heard under. next_check_at: when the liveness tick must look at it (NULL: nothing can happen before
-- it is heard again).
CREATE TABLE liveness_states (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  kind text NOT NULL CHECK (kind IN ('device', 'gateway')),
  entity_id text NOT NULL,
  state jsonb NOT NULL CHECK (jsonb_typeof(state) = 'object'),
  silent_after_ms bigint NOT NULL CHECK (silent_after_ms > 0),
  clear_after_heard integer NOT NULL CHECK (clear_after_heard >= 1),
  next_check_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind, entity_id)
);
CREATE INDEX liveness_states_next_check ON liveness_states (tenant_id, next_check_at) WHERE next_check_at IS NOT NULL;

-- Liveness alerts: one row per raise (alert_id = the raise's stable event id), cleared in place.
CREATE TABLE liveness_alerts (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  alert_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('device', 'gateway')),
  entity_id text NOT NULL,
  raised_at timestamptz NOT NULL,
  last_heard_at timestamptz NOT NULL,
  cleared_at timestamptz,
  clear_event_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, alert_id),
  CHECK ((cleared_at IS NULL) = (clear_event_id IS NULL))
);
CREATE INDEX liveness_alerts_open ON liveness_alerts (tenant_id, kind, entity_id) WHERE cleared_at IS NULL;

ALTER TABLE rollup_states OWNER TO parking_owner;
ALTER TABLE site_occupancy_5m OWNER TO parking_owner;
ALTER TABLE device_health_5m OWNER TO parking_owner;
ALTER TABLE device_health_1h OWNER TO parking_owner;
ALTER TABLE liveness_states OWNER TO parking_owner;
ALTER TABLE liveness_alerts OWNER TO parking_owner;
-- Reducer state is the pipeline's bookkeeping: only a row's creation is audited.
SELECT app_protect_tenant_table('rollup_states', '{state,next_close_at,updated_at}');
SELECT app_protect_tenant_table('site_occupancy_5m');
SELECT app_protect_tenant_table('device_health_5m');
SELECT app_protect_tenant_table('device_health_1h');
SELECT app_protect_tenant_table('liveness_states',
  '{state,silent_after_ms,clear_after_heard,next_check_at,updated_at}');
SELECT app_protect_tenant_table('liveness_alerts', '{cleared_at,clear_event_id,updated_at}');

-- ------------------------------------------------------------------------------------------------------ grants
GRANT SELECT, INSERT, UPDATE ON rollup_states, liveness_states, liveness_alerts TO parking_pipeline;
GRANT SELECT, INSERT, UPDATE ON site_occupancy_5m, device_health_5m, device_health_1h TO parking_pipeline;
GRANT SELECT ON liveness_alerts, site_occupancy_5m, device_health_5m, device_health_1h
  TO parking_api, parking_analyst, parking_platform_admin;
GRANT SELECT ON rollup_states, liveness_states TO parking_platform_admin;
-- The grants above were copied to existing chunks: take them back.
SELECT app_revoke_chunk_privileges(h)
  FROM unnest(ARRAY['site_occupancy_5m', 'device_health_5m', 'device_health_1h']::regclass[]) AS h;

-- Down Migration
DROP TABLE IF EXISTS liveness_alerts;
DROP TABLE IF EXISTS liveness_states;
ALTER TABLE sensor_devices DROP COLUMN IF EXISTS expected_uplink_interval_s;
DROP TABLE IF EXISTS device_health_1h;
DROP TABLE IF EXISTS device_health_5m;
ALTER TABLE site_occupancy_1h
  DROP COLUMN IF EXISTS occupied_seconds,
  DROP COLUMN IF EXISTS observed_seconds,
  DROP COLUMN IF EXISTS dwell_median_seconds;
UPDATE site_occupancy_1h SET peak_occupied = 0 WHERE peak_occupied IS NULL;
ALTER TABLE site_occupancy_1h ALTER COLUMN peak_occupied SET DEFAULT 0, ALTER COLUMN peak_occupied SET NOT NULL;
ALTER TABLE space_occupancy_1h DROP COLUMN IF EXISTS observed_seconds, DROP COLUMN IF EXISTS dwell_median_seconds;
ALTER TABLE space_occupancy_5m DROP COLUMN IF EXISTS observed_seconds, DROP COLUMN IF EXISTS dwell_median_seconds;
DROP TABLE IF EXISTS site_occupancy_5m;
DROP TABLE IF EXISTS rollup_states;
