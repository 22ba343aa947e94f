import type { KeyRow } from '../services/api-keys.js';
import type { DeviceRow, DeviceTypeRow, GatewayRow, OrphanRow } from '../services/devices.js';
import type { OverrideRow, PolicyRow } from '../services/displays.js';
import type { ReservationRow } from '../services/reservations.js';
import type { SiteRow } from '../services/sites.js';
import type { SpaceRow } from '../services/spaces.js';
import type { TenantRow, UserRow } from '../services/tenants.js';
import type { SecretRow } from '../services/webhook-secrets.js';

/**
 * v6 rows in v5's field names (snake_case, `/api/v1`, ../shared/reference/v5-openapi.json). Where v5 has no
 * value for a v6 state the field is left out rather than invented: a space in state `unknown` (no reading yet)
 * has no `state`, one without a site has no `site_id` (v5 declares both non-nullable). Fields v5 does not know
 * are kept (its schemas allow them), so v5 clients can reach v6 data.
 */
type Json = Record<string, unknown>;

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function siteV5(r: SiteRow): Json {
  return {
    id: r.id,
    name: r.name,
    timezone: r.timezone,
    address: r.address,
    latitude: r.latitude,
    longitude: r.longitude,
    metadata: r.metadata,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export function spaceV5(r: SpaceRow): Json {
  return {
    id: r.id,
    ...(r.site_id ? { site_id: r.site_id } : {}),
    code: r.code,
    name: r.name,
    floor: r.floor,
    zone: r.zone,
    ...(r.state === 'unknown' ? {} : { state: r.state }),
    state_since: iso(r.state_since),
    sensor_eui: r.sensor_dev_eui,
    display_eui: r.display_dev_eui,
    metadata: r.metadata,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export function reservationV5(r: ReservationRow): Json {
  return {
    id: r.id,
    space_id: r.space_id,
    reserved_from: iso(r.starts_at),
    reserved_until: iso(r.ends_at),
    // v5 has no no-show: to its clients the reservation simply expired.
    status: r.status === 'no_show' ? 'expired' : r.status,
    user_email: r.user_email,
    user_phone: r.user_phone,
    request_id: r.request_id,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    cancelled_at: iso(r.cancelled_at),
  };
}

export function deviceV5(r: DeviceRow): Json {
  return {
    dev_eui: r.dev_eui,
    device_type: r.kind,
    device_model: r.device_type,
    status: r.status,
    name: r.name,
    space_id: r.space_id,
    space_code: r.space_code,
    site_id: r.site_id,
    last_seen_at: iso(r.last_seen_at),
    created_at: iso(r.created_at),
    archived_at: iso(r.archived_at),
  };
}

export function orphanV5(r: OrphanRow): Json {
  return {
    dev_eui: r.dev_eui,
    device_model: null,
    status: 'orphan',
    name: r.device_name,
    application_id: r.application_id,
    first_seen_at: iso(r.first_seen_at),
    last_seen_at: iso(r.last_seen_at),
    uplink_count: Number(r.uplink_count),
    last_f_port: r.last_f_port,
    last_rssi: r.last_rssi,
    last_snr: r.last_snr,
  };
}

export function deviceTypeV5(r: DeviceTypeRow): Json {
  return {
    type_code: r.type_code,
    category: r.category,
    name: r.name,
    manufacturer: r.manufacturer,
    model: r.model,
    default_f_port: r.default_f_port,
  };
}

export function gatewayV5(r: GatewayRow): Json {
  return {
    gw_eui: r.gw_eui,
    name: r.name,
    site_id: r.site_id,
    latitude: r.latitude,
    longitude: r.longitude,
    last_seen_at: iso(r.last_seen_at),
    online: r.online,
    created_at: iso(r.created_at),
  };
}

export function policyV5(r: PolicyRow): Json {
  return {
    id: r.id,
    policy_name: r.name,
    is_active: r.is_active,
    display_codes: r.display_codes,
    created_at: iso(r.created_at),
    activated_at: iso(r.activated_at),
    updated_at: iso(r.updated_at),
  };
}

export function overrideV5(r: OverrideRow): Json {
  return {
    id: r.id,
    space_id: r.space_id,
    display_state: r.display_state,
    reason: r.reason,
    created_by: r.created_by,
    starts_at: iso(r.starts_at),
    expires_at: iso(r.expires_at),
    created_at: iso(r.created_at),
  };
}

export function apiKeyV5(r: KeyRow): Json {
  return {
    id: r.id,
    name: r.name,
    prefix: r.key_prefix,
    scopes: r.scopes,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    last_used_at: iso(r.last_used_at),
    revoked_at: iso(r.revoked_at),
  };
}

export function webhookSecretV5(r: SecretRow, secret?: string): Json {
  return {
    id: r.id,
    created_at: iso(r.created_at),
    is_active: r.status === 'current',
    ...(secret ? { secret } : {}),
  };
}

export function tenantV5(r: TenantRow): Json {
  return {
    id: r.id,
    name: r.name,
    slug: r.slug,
    is_active: r.is_active,
    created_at: iso(r.created_at),
    settings: r.settings,
  };
}

export function userV5(r: UserRow): Json {
  return { id: r.id, email: r.email, name: r.name, role: r.role };
}

export function userProfileV5(r: UserRow): Json {
  return {
    ...userV5(r),
    is_active: r.is_active,
    email_verified: r.email_verified,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    last_login_at: iso(r.last_login_at),
  };
}
