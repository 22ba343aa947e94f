-- The query API's pre-tenant lookups (issue 5). No new tables.

-- Up Migration
-- Whether a user is an active platform admin: the login response and the access token say so, so the client
-- knows it may switch tenants. parking_api cannot read platform_admins (RLS), hence SECURITY DEFINER as
-- parking_auth. Every cross-tenant read still goes through app_platform_admin_begin(), which checks again.
CREATE FUNCTION app_is_platform_admin(p_user_id uuid) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
  AS $$
    SELECT EXISTS (
      SELECT 1 FROM platform_admins a JOIN users u ON u.id = a.user_id WHERE a.user_id = p_user_id AND u.is_active
    )
  $$;
ALTER FUNCTION app_is_platform_admin(uuid) OWNER TO parking_auth;
REVOKE ALL ON FUNCTION app_is_platform_admin(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_is_platform_admin(uuid) TO parking_api;

-- Down Migration
DROP FUNCTION IF EXISTS app_is_platform_admin(uuid);
