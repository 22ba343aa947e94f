/**
 * The ChirpStack sync's decisions, pure: which call an entity needs (plan) and what its row says after the call
 * (outcome). No I/O here; repository.ts reads and writes the rows, chirpstack-client.ts makes the calls, worker.ts
 * runs them.
 */

export type SyncKind = 'device' | 'gateway';
export type SyncStatus = 'pending' | 'synced' | 'retrying' | 'failed';

/** A claimed chirpstack_sync_items row: what the worker knows before calling. */
export interface SyncItem {
  tenantId: string;
  kind: SyncKind;
  eui: string;
  /** The entity's version when claimed; the outcome is recorded against it. */
  version: number;
  inChirpstack: boolean;
  /** Failed attempts since the last success or change. */
  attempts: number;
}

/** The platform's current view of a device (sensor or display), with the ChirpStack ids it maps to. */
export interface DeviceSnapshot {
  kind: 'device';
  devEui: string;
  name: string | null;
  category: 'sensor' | 'display';
  /** ChirpStack application (display_devices.chirpstack_application_id, else the tenant's first); null: none. */
  applicationId: string | null;
  /** That application's device profile; null: not configured. */
  deviceProfileId: string | null;
  /** Inactive, decommissioned or archived: disabled in ChirpStack. */
  disabled: boolean;
}

export interface GatewaySnapshot {
  kind: 'gateway';
  gwEui: string;
  name: string;
  /** The ChirpStack tenant of the platform tenant's applications; null: none known. */
  chirpstackTenantId: string | null;
  latitude: number | null;
  longitude: number | null;
}

/**
 * Gone from this tenant, but the same EUI is registered in another tenant now (EUIs are unique across tenants, so a
 * delete frees the EUI for another registration): ChirpStack's device or gateway is that registration's, not ours.
 */
export interface ElsewhereSnapshot {
  kind: 'registered-elsewhere';
}

export type Snapshot = DeviceSnapshot | GatewaySnapshot | ElsewhereSnapshot;

/** What ChirpStack is told: a device or a gateway, created or updated. */
export interface DeviceSpec {
  devEui: string;
  name: string;
  description: string;
  applicationId: string;
  deviceProfileId: string;
  isDisabled: boolean;
  tags: Record<string, string>;
}

export interface GatewaySpec {
  gatewayId: string;
  name: string;
  description: string;
  tenantId: string;
  location: { latitude: number; longitude: number } | null;
  tags: Record<string, string>;
}

export type Plan =
  | { call: 'createDevice' | 'updateDevice'; device: DeviceSpec }
  | { call: 'createGateway' | 'updateGateway'; gateway: GatewaySpec }
  /** The entity was deleted in the platform: delete it from ChirpStack (ChirpStack's lower-case hex id). */
  | { call: 'deleteDevice'; devEui: string }
  | { call: 'deleteGateway'; gatewayId: string }
  /** Nothing can be sent (no ChirpStack mapping): recorded as a non-retriable failure. */
  | { call: 'none'; code: string; message: string }
  /** Nothing must be sent: this row no longer speaks for ChirpStack's entity (registered in another tenant). */
  | { call: 'skip' };

/** ChirpStack ids are lower-case hex (it accepts upper case, but answers lower case). */
const chirpstackEui = (eui: string) => eui.toLowerCase();

/**
 * The call an entity needs. Gone from the platform (deleted): delete it from ChirpStack, also when the row says
 * ChirpStack never had it (a create whose answer was lost may have made it); ChirpStack's NOT_FOUND then counts as
 * done (outcome).
 */
export function plan(item: SyncItem, snapshot: Snapshot | null): Plan {
  // Never delete what another tenant has registered since: that tenant's own row keeps ChirpStack in sync.
  if (snapshot?.kind === 'registered-elsewhere') return { call: 'skip' };
  if (!snapshot)
    return item.kind === 'device'
      ? { call: 'deleteDevice', devEui: chirpstackEui(item.eui) }
      : { call: 'deleteGateway', gatewayId: chirpstackEui(item.eui) };
  const tags = { parking_tenant_id: item.tenantId };
  if (snapshot.kind === 'device') {
    if (!snapshot.applicationId)
      return {
        call: 'none',
        code: 'NOT_MAPPED',
        message: 'the tenant has no ChirpStack application (chirpstack_applications)',
      };
    if (!snapshot.deviceProfileId)
      return {
        call: 'none',
        code: 'NOT_MAPPED',
        message: `ChirpStack application ${snapshot.applicationId} has no device_profile_id`,
      };
    return {
      call: item.inChirpstack ? 'updateDevice' : 'createDevice',
      device: {
        devEui: chirpstackEui(snapshot.devEui),
        name: snapshot.name ?? snapshot.devEui,
        description: `parking platform ${snapshot.category}`,
        applicationId: snapshot.applicationId,
        deviceProfileId: snapshot.deviceProfileId,
        isDisabled: snapshot.disabled,
        tags: { ...tags, parking_category: snapshot.category },
      },
    };
  }
  if (!snapshot.chirpstackTenantId)
    return {
      call: 'none',
      code: 'NOT_MAPPED',
      message: 'no ChirpStack tenant id for this tenant (chirpstack_applications.chirpstack_tenant_id)',
    };
  return {
    call: item.inChirpstack ? 'updateGateway' : 'createGateway',
    gateway: {
      gatewayId: chirpstackEui(snapshot.gwEui),
      name: snapshot.name,
      description: 'parking platform gateway',
      tenantId: snapshot.chirpstackTenantId,
      location:
        snapshot.latitude === null || snapshot.longitude === null
          ? null
          : { latitude: snapshot.latitude, longitude: snapshot.longitude },
      tags,
    },
  };
}

/** A call's result as the worker sees it: gRPC status code name (e.g. UNAVAILABLE) on failure. */
export type CallResult = { ok: true } | { ok: false; code: string; message: string };

/** gRPC statuses after which the same call can succeed later (the server or the network recovers). */
const retriableCodes = new Set([
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
  'INTERNAL',
  'UNKNOWN',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'CANCELLED',
]);

export interface BackoffOptions {
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
}

/** Exponential backoff: base · 2^(attempts-1), capped, with up to +25 % jitter (`jitter` in [0, 1)). */
export function backoffMs(attempts: number, options: BackoffOptions, jitter: number): number {
  const raw = Math.min(options.maxBackoffMs, options.baseBackoffMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(raw * (1 + 0.25 * jitter));
}

/** The row after an attempt (the repository applies it only while the row's version is still item.version). */
export interface Outcome {
  status: SyncStatus;
  attempts: number;
  inChirpstack: boolean;
  /** Set on success: the version ChirpStack now has. */
  syncedVersion: number | null;
  /** Delay until the next attempt (pending/retrying); null when none is due. */
  retryInMs: number | null;
  lastErrorCode: string | null;
  lastError: string | null;
}

/** The row in sync with ChirpStack at the claimed version (which has it, or not). */
function synced(item: SyncItem, inChirpstack: boolean): Outcome {
  return {
    status: 'synced',
    attempts: 0,
    inChirpstack,
    syncedVersion: item.version,
    retryInMs: null,
    lastErrorCode: null,
    lastError: null,
  };
}

export function outcome(
  item: SyncItem,
  chosen: Plan,
  result: CallResult,
  options: BackoffOptions,
  jitter: number,
): Outcome {
  if (chosen.call === 'none')
    return fail('failed', item.attempts + 1, chosen.code, chosen.message, null, item.inChirpstack);
  // Another tenant's registration owns ChirpStack's entity now: this row is done, without a call.
  if (chosen.call === 'skip') return synced(item, false);
  const creating = chosen.call === 'createDevice' || chosen.call === 'createGateway';
  const deleting = chosen.call === 'deleteDevice' || chosen.call === 'deleteGateway';
  // Deleted, or already not there: ChirpStack no longer has it, which is what the platform says.
  if (deleting && (result.ok || result.code === 'NOT_FOUND')) return synced(item, false);
  if (result.ok) return synced(item, true);
  const attempts = item.attempts + 1;
  // ChirpStack already has it (made by hand, or our earlier create's answer was lost): update it next, at once.
  // An update of something ChirpStack no longer has: create it. Both count as attempts, so they cannot loop.
  if ((creating && result.code === 'ALREADY_EXISTS') || (!creating && result.code === 'NOT_FOUND')) {
    if (attempts >= options.maxAttempts)
      return fail('failed', attempts, result.code, result.message, null, creating);
    return fail('pending', attempts, result.code, result.message, 0, creating);
  }
  if (!retriableCodes.has(result.code) || attempts >= options.maxAttempts)
    return fail('failed', attempts, result.code, result.message, null, item.inChirpstack);
  return fail(
    'retrying',
    attempts,
    result.code,
    result.message,
    backoffMs(attempts, options, jitter),
    item.inChirpstack,
  );
}

function fail(
  status: SyncStatus,
  attempts: number,
  code: string,
  message: string,
  retryInMs: number | null,
  inChirpstack: boolean,
): Outcome {
  return {
    status,
    attempts,
    inChirpstack,
    syncedVersion: null,
    retryInMs,
    lastErrorCode: code,
    lastError: message.slice(0, 1_000),
  };
}
