-- Self-service registration (issue 5, v5 `POST /api/v1/auth/register`): a new tenant with its first owner. No new
-- tables.
--
-- parking_api may not create tenants or users, so registration is one SECURITY DEFINER function owned by a role
-- that may do exactly that: parking_registrar (NOLOGIN, NOBYPASSRLS) holds INSERT on tenants, users and
-- memberships and nothing else. RLS still applies to it: the function sets the new tenant as the transaction's
-- tenant (so the tenant_isolation policies of tenants and memberships admit the rows, and the audit trigger
-- records them with the new owner as actor and the request id), and users get one INSERT-only policy for it.

-- Up Migration
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parking_registrar') THEN CREATE ROLE parking_registrar NOLOGIN; END IF;
END
$$;
ALTER ROLE parking_registrar NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT USAGE ON SCHEMA public TO parking_registrar;
GRANT INSERT ON tenants, users, memberships TO parking_registrar;
CREATE POLICY registrar_insert ON users FOR INSERT TO parking_registrar WITH CHECK (true);

-- Creates the tenant (slug derived from the name plus a random suffix), the user (email lower-cased; the caller
-- hashes the password) and the owner membership, in the caller's transaction. A taken email raises
-- unique_violation (the API answers 409). The transaction-local settings it changes are restored before it returns.
CREATE FUNCTION register_tenant(
  p_tenant_name text,
  p_email text,
  p_user_name text,
  p_password_hash text,
  p_request_id text
) RETURNS TABLE (tenant_id uuid, user_id uuid)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $$
  DECLARE
    v_tenant uuid := gen_random_uuid();
    v_user uuid := gen_random_uuid();
    v_base text := left(trim(BOTH '-' FROM regexp_replace(lower(coalesce(p_tenant_name, '')), '[^a-z0-9]+', '-', 'g')), 40);
    v_saved text[] := ARRAY[current_setting('app.tenant_id', true), current_setting('app.actor_type', true),
                            current_setting('app.actor_id', true), current_setting('app.request_id', true)];
  BEGIN
    IF length(trim(coalesce(p_tenant_name, ''))) NOT BETWEEN 1 AND 200 THEN
      RAISE EXCEPTION 'tenant name must have 1 to 200 characters' USING ERRCODE = 'check_violation';
    END IF;
    IF length(coalesce(p_password_hash, '')) < 20 THEN
      RAISE EXCEPTION 'a password hash is required' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true), set_config('app.actor_type', 'user', true),
            set_config('app.actor_id', v_user::text, true), set_config('app.request_id', coalesce(p_request_id, ''), true);
    INSERT INTO tenants (id, slug, name)
    VALUES (v_tenant, (CASE WHEN v_base = '' THEN 'tenant' ELSE v_base END) || '-' || left(md5(v_tenant::text), 6),
            trim(p_tenant_name));
    INSERT INTO users (id, email, name, password_hash)
    VALUES (v_user, lower(p_email), coalesce(nullif(trim(p_user_name), ''), split_part(lower(p_email), '@', 1)),
            p_password_hash);
    INSERT INTO memberships (tenant_id, user_id, role) VALUES (v_tenant, v_user, 'owner');
    PERFORM set_config('app.tenant_id', coalesce(v_saved[1], ''), true),
            set_config('app.actor_type', coalesce(v_saved[2], ''), true),
            set_config('app.actor_id', coalesce(v_saved[3], ''), true),
            set_config('app.request_id', coalesce(v_saved[4], ''), true);
    RETURN QUERY SELECT v_tenant, v_user;
  END
  $$;
ALTER FUNCTION register_tenant(text, text, text, text, text) OWNER TO parking_registrar;
REVOKE ALL ON FUNCTION register_tenant(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_tenant(text, text, text, text, text) TO parking_api;

-- Down Migration
DROP FUNCTION IF EXISTS register_tenant(text, text, text, text, text);
DROP POLICY IF EXISTS registrar_insert ON users;
REVOKE ALL ON tenants, users, memberships FROM parking_registrar;
REVOKE USAGE ON SCHEMA public FROM parking_registrar;
