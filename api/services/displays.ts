import type { PoolClient } from '../../lib/db/pool.js';
import { PlatformError } from '../../lib/errors.js';
import {
  defaultDisplayPolicy,
  initialDisplayState,
  mustShow,
  type DisplayKind,
} from '../../processors/display/reduce.js';

/**
 * Display policies (at most one active per tenant), admin overrides and the state a space's display must show.
 * The one implementation behind v5 and the v6 routes to come; what to show is decided by the display
 * processor's own pure `mustShow`, so the API never disagrees with the displays.
 */
export interface PolicyRow {
  id: string;
  name: string;
  is_active: boolean;
  display_codes: Record<string, unknown>;
  created_at: Date;
  activated_at: Date | null;
  updated_at: Date;
}

const policyColumns = 'id, name, is_active, display_codes, created_at, activated_at, updated_at';

export async function listPolicies(db: PoolClient, tenantId: string): Promise<PolicyRow[]> {
  const { rows } = await db.query<PolicyRow>(
    `SELECT ${policyColumns} FROM display_policies WHERE tenant_id = $1 ORDER BY created_at, id`,
    [tenantId],
  );
  return rows;
}

export async function getPolicy(db: PoolClient, tenantId: string, policyId: string): Promise<PolicyRow> {
  const { rows } = await db.query<PolicyRow>(
    `SELECT ${policyColumns} FROM display_policies WHERE tenant_id = $1 AND id = $2`,
    [tenantId, policyId],
  );
  if (!rows[0]) throw new PlatformError('NOT_FOUND', 'no such display policy');
  return rows[0];
}

async function activate(db: PoolClient, tenantId: string, policyId: string): Promise<void> {
  await db.query(
    'UPDATE display_policies SET is_active = false, updated_at = now() WHERE tenant_id = $1 AND is_active AND id <> $2',
    [tenantId, policyId],
  );
  await db.query(
    `UPDATE display_policies SET is_active = true, activated_at = now(), updated_at = now()
      WHERE tenant_id = $1 AND id = $2 AND NOT is_active`,
    [tenantId, policyId],
  );
}

/** Creates a policy; `active` makes it the tenant's active one (the previous one is deactivated). */
export async function createPolicy(
  db: PoolClient,
  tenantId: string,
  input: { name: string; displayCodes: Record<string, unknown>; active: boolean },
): Promise<PolicyRow> {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO display_policies (tenant_id, name, display_codes) VALUES ($1, $2, $3) RETURNING id',
    [tenantId, input.name, input.displayCodes],
  );
  const id = rows[0]!.id;
  if (input.active) await activate(db, tenantId, id);
  return getPolicy(db, tenantId, id);
}

/** Changes the fields present; `active: true` activates it, `false` leaves the tenant without an active one. */
export async function updatePolicy(
  db: PoolClient,
  tenantId: string,
  policyId: string,
  input: {
    name?: string | undefined;
    displayCodes?: Record<string, unknown> | undefined;
    active?: boolean | undefined;
  },
): Promise<PolicyRow> {
  await getPolicy(db, tenantId, policyId);
  await db.query(
    `UPDATE display_policies SET name = coalesce($3, name), display_codes = coalesce($4::jsonb, display_codes),
       updated_at = now() WHERE tenant_id = $1 AND id = $2`,
    [tenantId, policyId, input.name ?? null, input.displayCodes ?? null],
  );
  if (input.active === true) await activate(db, tenantId, policyId);
  if (input.active === false)
    await db.query(
      'UPDATE display_policies SET is_active = false, updated_at = now() WHERE tenant_id = $1 AND id = $2',
      [tenantId, policyId],
    );
  return getPolicy(db, tenantId, policyId);
}

export const overrideStates = ['free', 'occupied', 'reserved', 'maintenance', 'off'] as const;
export type OverrideState = (typeof overrideStates)[number];

export interface OverrideRow {
  id: string;
  space_id: string;
  display_state: OverrideState;
  reason: string | null;
  created_by: string | null;
  starts_at: Date;
  expires_at: Date;
  cleared_at: Date | null;
  created_at: Date;
}

const overrideColumns =
  'id, space_id, display_state, reason, created_by, starts_at, expires_at, cleared_at, created_at';

/** Forces a space's display until `expiresAt`; overlapping uncleared overrides: CONFLICT (database). */
export async function createOverride(
  db: PoolClient,
  tenantId: string,
  input: {
    spaceId: string;
    state: OverrideState;
    reason?: string | null | undefined;
    expiresAt: string;
    createdBy: string | null;
  },
): Promise<OverrideRow> {
  const space = await db.query('SELECT 1 FROM spaces WHERE tenant_id = $1 AND id = $2', [
    tenantId,
    input.spaceId,
  ]);
  if (space.rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such space');
  if (Date.parse(input.expiresAt) <= Date.now())
    throw new PlatformError('VALIDATION_FAILED', 'the override must expire in the future');
  const { rows } = await db.query<OverrideRow>(
    `INSERT INTO display_overrides (tenant_id, space_id, display_state, reason, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${overrideColumns}`,
    [tenantId, input.spaceId, input.state, input.reason ?? null, input.createdBy, input.expiresAt],
  );
  return rows[0]!;
}

/** Clears an override (kept for the record); NOT_FOUND when unknown or already cleared. */
export async function clearOverride(db: PoolClient, tenantId: string, overrideId: string): Promise<void> {
  const { rowCount } = await db.query(
    'UPDATE display_overrides SET cleared_at = now() WHERE tenant_id = $1 AND id = $2 AND cleared_at IS NULL',
    [tenantId, overrideId],
  );
  if (rowCount === 0) throw new PlatformError('NOT_FOUND', 'no such active override');
}

export interface ComputedState {
  spaceId: string;
  displayDevEui: string | null;
  kind: DisplayKind | 'off';
  reason: string;
  /** The code for `kind` from the display's own codes, else the active policy's; null when neither has one. */
  displayCode: unknown;
  activePolicyId: string | null;
  overrideId: string | null;
}

/**
 * What the space's display must show now, from the stored facts (space state and staleness, active override,
 * reservations) through the display processor's `mustShow`. An `off` override shows as `off` (the processor
 * has no such look: it is the device being switched off).
 */
export async function computedState(
  db: PoolClient,
  tenantId: string,
  spaceId: string,
): Promise<ComputedState> {
  const { rows } = await db.query<{
    state: string;
    stale: boolean;
    display_dev_eui: string | null;
    display_status: string | null;
    display_codes: Record<string, unknown> | null;
    policy_id: string | null;
    policy_codes: Record<string, unknown> | null;
    override_id: string | null;
    override_state: OverrideState | null;
    override_expires: Date | null;
  }>(
    `SELECT s.state, s.stale, d.dev_eui AS display_dev_eui, d.status AS display_status,
            d.display_codes, p.id AS policy_id, p.display_codes AS policy_codes,
            o.id AS override_id, o.display_state AS override_state, o.expires_at AS override_expires
       FROM spaces s
       LEFT JOIN display_devices d ON d.tenant_id = s.tenant_id AND d.space_id = s.id
       LEFT JOIN display_policies p ON p.tenant_id = s.tenant_id AND p.is_active
       LEFT JOIN LATERAL (
         SELECT id, display_state, expires_at FROM display_overrides
          WHERE tenant_id = s.tenant_id AND space_id = s.id AND cleared_at IS NULL
            AND starts_at <= now() AND expires_at > now()
          ORDER BY starts_at DESC LIMIT 1) o ON true
      WHERE s.tenant_id = $1 AND s.id = $2`,
    [tenantId, spaceId],
  );
  const row = rows[0];
  if (!row) throw new PlatformError('NOT_FOUND', 'no such space');
  const reservations = await db.query<{ id: string; starts: Date; ends: Date }>(
    `SELECT id, lower(during) AS starts, upper(during) AS ends FROM reservations
      WHERE tenant_id = $1 AND space_id = $2 AND status IN ('pending', 'confirmed') AND upper(during) > now()
      ORDER BY lower(during) LIMIT 10`,
    [tenantId, spaceId],
  );
  const now = Date.now();
  const base = {
    spaceId,
    displayDevEui: row.display_dev_eui,
    activePolicyId: row.policy_id,
    overrideId: row.override_id,
  };
  const codeOf = (kind: string) => row.display_codes?.[kind] ?? row.policy_codes?.[kind] ?? null;
  if (row.override_state === 'off')
    return { ...base, kind: 'off', reason: 'override', displayCode: codeOf('off') };
  const state = initialDisplayState(tenantId, row.display_dev_eui ?? '', spaceId);
  state.clock = now;
  state.sensor = {
    state: row.state === 'free' || row.state === 'occupied' ? row.state : 'unknown',
    stale: row.stale,
  };
  state.outOfService = row.display_status !== null && row.display_status !== 'active';
  state.blocked = row.state === 'maintenance';
  state.override =
    row.override_state && row.override_expires
      ? { kind: row.override_state, expiresAt: row.override_expires.getTime() }
      : null;
  state.reservations = reservations.rows.map((r) => ({
    reservationId: r.id,
    startsAt: r.starts.getTime(),
    endsAt: r.ends.getTime(),
    started: r.starts.getTime() <= now,
  }));
  const shown = mustShow(state, defaultDisplayPolicy, now);
  return { ...base, kind: shown.kind, reason: shown.reason, displayCode: codeOf(shown.kind) };
}

/** The tenant's uncleared, unexpired overrides, optionally of one space, soonest to expire first. */
export async function listActiveOverrides(
  db: PoolClient,
  tenantId: string,
  spaceId: string | undefined,
): Promise<OverrideRow[]> {
  const { rows } = await db.query<OverrideRow>(
    `SELECT ${overrideColumns} FROM display_overrides
      WHERE tenant_id = $1 AND ($2::uuid IS NULL OR space_id = $2) AND cleared_at IS NULL AND expires_at > now()
      ORDER BY expires_at, id LIMIT 200`,
    [tenantId, spaceId ?? null],
  );
  return rows;
}
