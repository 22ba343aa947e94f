-- Foundation: TimescaleDB, the database roles, tenants, spaces, sensors, API keys and the uplinks hypertable.
-- Every table holding tenant data has tenant_id first in its primary key, RLS enabled AND forced, and a policy
-- keyed on app_current_tenant(), which reads the transaction-local setting made by lib/db/tenant.ts.

-- Up Migration
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Roles are cluster-wide, so they are created only when missing; their attributes are (re)asserted below so a
-- pre-existing role cannot keep a dangerous attribute. Passwords are set outside migrations (schemas/migrate.ts
-- from the environment locally, by the operator in production).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parking_owner') THEN CREATE ROLE parking_owner NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parking_api') THEN CREATE ROLE parking_api LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parking_pipeline') THEN CREATE ROLE parking_pipeline LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parking_auth') THEN CREATE ROLE parking_auth NOLOGIN; END IF;
END
$$;
-- The API role is bound by RLS: it can never bypass it, own objects or create roles.
ALTER ROLE parking_api NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
-- The pipeline writes for every tenant (and will COPY, which RLS-bound roles may not): BYPASSRLS, not superuser.
ALTER ROLE parking_pipeline NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
-- Owns the credential lookup functions only; needs to read api_keys before any tenant is known.
ALTER ROLE parking_auth NOLOGIN NOSUPERUSER BYPASSRLS;
ALTER ROLE parking_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;

GRANT USAGE ON SCHEMA public TO parking_api, parking_pipeline, parking_auth;

CREATE FUNCTION app_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE spaces (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  code text NOT NULL,
  name text NOT NULL,
  state text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'free', 'occupied')),
  state_since timestamptz,
  last_event_time timestamptz,
  last_f_cnt bigint,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, code)
);

CREATE TABLE sensor_devices (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  dev_eui text NOT NULL CHECK (dev_eui ~ '^[0-9A-F]{16}$'),
  space_id uuid,
  codec text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, dev_eui),
  FOREIGN KEY (tenant_id, space_id) REFERENCES spaces (tenant_id, id)
);
-- A DevEUI is unique on a LoRaWAN network: ingest resolves DevEUI -> tenant through this index.
CREATE UNIQUE INDEX sensor_devices_dev_eui_key ON sensor_devices (dev_eui);

CREATE TABLE api_keys (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  name text NOT NULL,
  key_hash bytea NOT NULL UNIQUE,
  scopes text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE uplinks (
  tenant_id uuid NOT NULL,
  time timestamptz NOT NULL,
  event_id uuid NOT NULL,
  dev_eui text NOT NULL,
  space_id uuid,
  f_cnt bigint NOT NULL,
  f_port integer NOT NULL,
  occupied boolean,
  battery_volts double precision,
  temperature_c double precision,
  rssi integer,
  snr double precision,
  payload bytea NOT NULL,
  received_at timestamptz NOT NULL,
  -- event_id is ChirpStack's deduplicationId: a redelivered record inserts nothing.
  PRIMARY KEY (tenant_id, event_id, time)
);
SELECT create_hypertable('uplinks', by_range('time', INTERVAL '1 day'));
CREATE INDEX uplinks_device_time ON uplinks (tenant_id, dev_eui, time DESC);

ALTER TABLE tenants OWNER TO parking_owner;
ALTER TABLE spaces OWNER TO parking_owner;
ALTER TABLE sensor_devices OWNER TO parking_owner;
ALTER TABLE api_keys OWNER TO parking_owner;
ALTER TABLE uplinks OWNER TO parking_owner;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE spaces ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE sensor_devices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE uplinks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenants
  USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());
CREATE POLICY tenant_isolation ON spaces
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON sensor_devices
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON api_keys
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON uplinks
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

GRANT SELECT ON tenants, spaces, sensor_devices TO parking_api;
GRANT SELECT ON tenants, spaces, sensor_devices TO parking_pipeline;
GRANT UPDATE (state, state_since, last_event_time, last_f_cnt, updated_at) ON spaces TO parking_pipeline;
GRANT INSERT, SELECT ON uplinks TO parking_pipeline;
GRANT SELECT ON api_keys TO parking_auth;

-- Resolves an API key (by its SHA-256) to its tenant before any tenant context exists. SECURITY DEFINER as
-- parking_auth, which can read api_keys and nothing else; the API role may only call it.
CREATE FUNCTION authenticate_api_key(p_key_hash bytea)
  RETURNS TABLE (tenant_id uuid, key_id uuid, scopes text[])
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT k.tenant_id, k.id, k.scopes FROM api_keys k WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
  $$;
ALTER FUNCTION authenticate_api_key(bytea) OWNER TO parking_auth;
REVOKE ALL ON FUNCTION authenticate_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION authenticate_api_key(bytea) TO parking_api;

-- Down Migration
DROP FUNCTION IF EXISTS authenticate_api_key(bytea);
DROP TABLE IF EXISTS uplinks;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS sensor_devices;
DROP TABLE IF EXISTS spaces;
DROP TABLE IF EXISTS tenants;
DROP FUNCTION IF EXISTS app_current_tenant();
