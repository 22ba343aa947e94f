-- Member invites (issue 5, memberships): an owner or admin invites an email with a role; whoever holds the token
-- accepts it once, before it expires, and becomes a member with that role: a new user (created with the password
-- given on acceptance) or the existing user of that email (logged in). Invites are listed and revoked by the
-- tenant's admins; every change is audited like any tenant row.
--
-- The token is `inv_<tenant id>_<43 random chars>`; only its SHA-256 is stored (redacted in audit rows, like every
-- `*_hash` column), and the tenant id in it lets acceptance look the invite up under that tenant's RLS.
-- Acceptance creates a user, which parking_api may not do: create_invited_user() (owned by parking_registrar, the
-- role that may insert users) does it, and only for an email with an open invite in the transaction's tenant.

-- Up Migration
CREATE TABLE member_invites (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320 AND email LIKE '%_@_%'),
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'owner')),
  token_hash bytea NOT NULL CHECK (length(token_hash) = 32),
  invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  CHECK (accepted_at IS NULL OR revoked_at IS NULL),
  CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX member_invites_token ON member_invites (tenant_id, token_hash);
-- One open invite per email and tenant: inviting again revokes the earlier one (api/services/tenants.ts).
CREATE UNIQUE INDEX member_invites_open ON member_invites (tenant_id, email)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX member_invites_created ON member_invites (tenant_id, created_at DESC);
ALTER TABLE member_invites OWNER TO parking_owner;
SELECT app_protect_tenant_table('member_invites');

-- Revoking and accepting are updates: an invite's history stays (no DELETE).
GRANT SELECT, INSERT, UPDATE ON member_invites TO parking_api;
GRANT SELECT ON member_invites TO parking_platform_admin, parking_registrar;

-- Creates the user an open invite of the current tenant (app.tenant_id, set by withTenant) names. The caller hashes
-- the password and chooses the id (so the transaction's actor is the new user from its first statement). A taken
-- email raises unique_violation (the API answers 409); no open invite: insufficient_privilege.
CREATE FUNCTION create_invited_user(p_user_id uuid, p_email text, p_name text, p_password_hash text)
  RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $$
  BEGIN
    IF length(coalesce(p_password_hash, '')) < 20 THEN
      RAISE EXCEPTION 'a password hash is required' USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (
      SELECT 1 FROM member_invites
       WHERE tenant_id = app_current_tenant() AND email = lower(p_email)
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
    ) THEN
      RAISE EXCEPTION 'no open invite for % in the current tenant', lower(p_email) USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO users (id, email, name, password_hash)
    VALUES (p_user_id, lower(p_email), coalesce(nullif(trim(p_name), ''), split_part(lower(p_email), '@', 1)),
            p_password_hash);
  END
  $$;
ALTER FUNCTION create_invited_user(uuid, text, text, text) OWNER TO parking_registrar;
REVOKE ALL ON FUNCTION create_invited_user(uuid, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_invited_user(uuid, text, text, text) TO parking_api;

-- Down Migration
DROP FUNCTION IF EXISTS create_invited_user(uuid, text, text, text);
DROP TABLE IF EXISTS member_invites;
