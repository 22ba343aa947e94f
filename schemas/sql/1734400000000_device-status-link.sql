-- device_status gets the two facts of a ChirpStack status event (DevStatusAns) it had no column for, written by
-- processors/device-status. Without external_power a NULL battery_percent cannot tell "runs on mains" from "cannot
-- measure"; margin (the demodulation margin the device measured on the last uplink, dB) is the link's headroom.
-- Both nullable: nothing else writes this table, but rows may come from elsewhere (imports, other writers).
-- RLS, policies, grants and the chunk-privilege trigger are per table and row, not per column: the existing ones
-- (1732600000000_tenant-model.sql: analysts, API, platform admins SELECT; pipeline SELECT, INSERT) cover them.

-- Up Migration

ALTER TABLE device_status
  ADD COLUMN margin integer,
  ADD COLUMN external_power boolean;

-- Down Migration

ALTER TABLE device_status DROP COLUMN IF EXISTS external_power, DROP COLUMN IF EXISTS margin;
