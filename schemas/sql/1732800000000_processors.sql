-- Stateful processors (issue 6): consumer offsets stored with results, the outbox for events that leave the
-- database, the occupancy debounce state on spaces, and per-tenant occupancy policies.
--
-- Exactly-once comes from PostgreSQL, not Kafka (the local broker has no real transactions): a processor writes
-- its results, its outbox rows and its consumer offsets in ONE transaction, and on start and on every rebalance
-- seeks each assigned partition to the offset stored here. Kafka's committed offsets are informational only.

-- Up Migration

-- Global bookkeeping, not tenant data: one row per (consumer group, topic, partition). Only the pipeline role
-- (BYPASSRLS) reads and writes it; RLS is forced with no policy, so no other role sees a row.
CREATE TABLE processor_offsets (
  group_id text NOT NULL,
  topic text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  -- The next offset to apply (Kafka's convention: last applied + 1).
  next_offset bigint NOT NULL CHECK (next_offset >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition)
);
ALTER TABLE processor_offsets OWNER TO parking_owner;
ALTER TABLE processor_offsets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- Events leaving the database (Kafka records; later MQTT downlinks), written in the transaction that produced
-- them and published by the relay (processors/runtime/outbox.ts) in `seq` order, then marked sent. `id` is the
-- event's stable id (same inputs, same id): a replayed insert does nothing and consumers drop repeats by it.
-- A hypertable on the event's own time (deterministic, so it can be part of the key) so that sent rows leave
-- with drop_chunks and inserts do not pay for a row-level audit (it is not configuration).
CREATE SEQUENCE outbox_seq AS bigint;
CREATE TABLE outbox (
  tenant_id uuid NOT NULL,
  time timestamptz NOT NULL,
  id uuid NOT NULL,
  seq bigint NOT NULL DEFAULT nextval('outbox_seq'),
  topic text NOT NULL,
  key text NOT NULL,
  value bytea NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  PRIMARY KEY (tenant_id, id, time)
);
SELECT create_hypertable('outbox', by_range('time', INTERVAL '1 day'), create_default_indexes => false);
-- Only unsent rows are indexed: the relay's working set stays small however long sent rows are kept.
CREATE INDEX outbox_unsent ON outbox (tenant_id, seq) WHERE sent_at IS NULL;
ALTER TABLE outbox OWNER TO parking_owner;
ALTER SEQUENCE outbox_seq OWNER TO parking_owner;
SELECT app_protect_tenant_table('outbox');

-- Occupancy policies (processors/occupancy/reduce.ts, OccupancyPolicy), kept like display_policies: a tenant may
-- prepare several, at most one is active; a tenant without an active one gets the default (two matching readings
-- within 10 s).
CREATE TABLE occupancy_policies (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  name text NOT NULL,
  is_active boolean NOT NULL DEFAULT false,
  confirm_count integer NOT NULL DEFAULT 2 CHECK (confirm_count BETWEEN 1 AND 10),
  confirm_window_ms integer NOT NULL DEFAULT 10000 CHECK (confirm_window_ms BETWEEN 0 AND 3600000),
  stale_after_ms bigint NOT NULL DEFAULT 9000000 CHECK (stale_after_ms >= 60000),
  duplicate_window_ms integer NOT NULL DEFAULT 60000 CHECK (duplicate_window_ms >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX occupancy_policies_one_active ON occupancy_policies (tenant_id) WHERE is_active;
ALTER TABLE occupancy_policies OWNER TO parking_owner;
SELECT app_protect_tenant_table('occupancy_policies');

-- The occupancy reducer's whole state lives on the space row, so a restarted or rebalanced processor continues a
-- debounce run where the previous one stopped.
ALTER TABLE spaces
  ADD COLUMN pending_occupied boolean,
  -- Epoch ms of the readings of the pending run, oldest first (at most confirm_count).
  ADD COLUMN pending_times bigint[],
  ADD COLUMN stale boolean NOT NULL DEFAULT false,
  ADD COLUMN last_dev_eui text,
  ADD CONSTRAINT spaces_pending_run CHECK ((pending_occupied IS NULL) = (pending_times IS NULL));
-- The new columns are pipeline bookkeeping too: re-create the audit trigger with them as telemetry columns.
DROP TRIGGER audit ON spaces;
SELECT app_protect_tenant_table('spaces',
  '{state,state_since,last_event_time,last_f_cnt,updated_at,pending_occupied,pending_times,stale,last_dev_eui}');

-- ------------------------------------------------------------------------------------------------------ grants
GRANT SELECT, INSERT, UPDATE ON processor_offsets TO parking_pipeline;
GRANT SELECT, INSERT, UPDATE (sent_at) ON outbox TO parking_pipeline;
GRANT USAGE ON SEQUENCE outbox_seq TO parking_pipeline;
GRANT UPDATE (pending_occupied, pending_times, stale, last_dev_eui) ON spaces TO parking_pipeline;
GRANT SELECT ON occupancy_policies TO parking_pipeline, parking_analyst, parking_platform_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON occupancy_policies TO parking_api;
GRANT SELECT ON outbox TO parking_platform_admin;
-- The grants above were copied to the outbox's chunks: take them back.
SELECT app_revoke_chunk_privileges('outbox');

-- Down Migration
DROP TRIGGER IF EXISTS audit ON spaces;
SELECT app_protect_tenant_table('spaces', '{state,state_since,last_event_time,last_f_cnt,updated_at}');
ALTER TABLE spaces DROP CONSTRAINT IF EXISTS spaces_pending_run, DROP COLUMN IF EXISTS pending_occupied,
  DROP COLUMN IF EXISTS pending_times, DROP COLUMN IF EXISTS stale, DROP COLUMN IF EXISTS last_dev_eui;
DROP TABLE IF EXISTS occupancy_policies;
DROP TABLE IF EXISTS outbox;
DROP SEQUENCE IF EXISTS outbox_seq;
DROP TABLE IF EXISTS processor_offsets;
