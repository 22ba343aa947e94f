import type { PoolClient } from '../../lib/db/pool.js';
import type { LivenessAlertRecord, UplinkRecord } from '../../schemas/avro/records.js';
import type { OutboxMessage } from '../runtime/outbox.js';
import {
  devicePolicy,
  gatewayPolicy,
  initialLivenessState,
  reduceLiveness,
  type EntityKind,
  type LivenessEffect,
  type LivenessEvent,
  type LivenessPolicy,
  type LivenessState,
} from './reduce.js';

/**
 * The I/O of the liveness reducer (processors/liveness/reduce.ts), inside one transaction each (the runtime's for
 * the uplink consumer, the tick's own). An uplink means its device was heard, and each registered gateway
 * (gateways.gw_eui) that received it, at the uplink's network time. Each entity's liveness_states row holds the
 * reducer state and the policy it was heard under, and is its lock: the consumer creates and locks its rows in
 * key order in one statement, the tick skips locked rows, so nothing deadlocks.
 *
 * Alerts: a raise inserts a liveness_alerts row (alert_id = its stable event id, so a replay inserts nothing),
 * a clear closes it; both go to the alerts topic through the outbox (stable ids: consumers drop repeats).
 */
export interface LivenessSettings {
  /** Expected uplink interval of a sensor without sensor_devices.expected_uplink_interval_s, ms. */
  deviceIntervalMs: number;
  gatewaySilentMinutes: number;
  alertsTopic: string;
  encode(record: LivenessAlertRecord): Promise<Buffer>;
}

export interface LivenessResult {
  outbox: OutboxMessage[];
  alerts: LivenessAlertRecord[];
}

interface EntityKey {
  tenantId: string;
  kind: EntityKind;
  id: string;
}

interface Entity {
  state: LivenessState;
  policy: LivenessPolicy;
}

const entityKey = (k: EntityKey) => `${k.tenantId}/${k.kind}/${k.id}`;

/** Uplinks in: their devices and gateways were heard. */
export async function applyLivenessUplinks(
  client: PoolClient,
  uplinks: readonly UplinkRecord[],
  settings: LivenessSettings,
): Promise<LivenessResult> {
  const heard: Array<{ key: EntityKey; at: number }> = [];
  const gatewayIds = [...new Set(uplinks.flatMap((u) => u.gatewayIds.map((g) => g.toUpperCase())))];
  const gateways = await gatewayTenants(client, gatewayIds);
  for (const u of uplinks) {
    heard.push({ key: { tenantId: u.tenantId, kind: 'device', id: u.devEui }, at: u.time });
    for (const g of new Set(u.gatewayIds.map((id) => id.toUpperCase()))) {
      const tenantId = gateways.get(g);
      if (tenantId !== undefined) heard.push({ key: { tenantId, kind: 'gateway', id: g }, at: u.time });
    }
  }
  if (heard.length === 0) return { outbox: [], alerts: [] };
  const policies = await policiesOf(
    client,
    heard.map((h) => h.key),
    settings,
  );
  const entities = await lockEntities(client, policies);
  const effects: LivenessEffect[] = [];
  for (const h of heard) reduceInto(entities, h.key, { type: 'heard', at: h.at }, effects);
  await saveEntities(client, entities);
  await recordLastSeen(client, entities);
  return writeAlerts(client, effects, settings);
}

/** The tick: entities whose silence may have reached their limit by `now` (epoch ms); at most `maxItems`. */
export async function tickLiveness(
  client: PoolClient,
  now: number,
  maxItems: number,
  settings: LivenessSettings,
): Promise<LivenessResult & { entities: number }> {
  const { rows: due } = await client.query<EntityRow>(
    `SELECT tenant_id, kind, entity_id, state, silent_after_ms, clear_after_heard FROM liveness_states
      WHERE next_check_at <= to_timestamp($1 / 1000.0)
      ORDER BY next_check_at, tenant_id, kind, entity_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [now, maxItems],
  );
  const unwatched = await unwatchedEntities(client, due);
  const rows = due.filter((r) => !unwatched.has(entityKey(keyOf(r))));
  const entities = new Map(rows.map((r) => [entityKey(keyOf(r)), entityOf(r)]));
  const effects: LivenessEffect[] = [];
  for (const r of rows) reduceInto(entities, keyOf(r), { type: 'tick', now }, effects);
  await saveEntities(client, entities);
  return { ...(await writeAlerts(client, effects, settings)), entities: rows.length };
}

/**
 * Of the due entities, those no longer watched: a device deleted, or no longer in service (status other than
 * active), or a gateway deleted. Their silence is expected, so they raise nothing; their check is cleared
 * (next_check_at NULL) until they are heard again.
 */
async function unwatchedEntities(client: PoolClient, due: readonly EntityRow[]): Promise<Set<string>> {
  if (due.length === 0) return new Set();
  const { rows } = await client.query<{ tenant_id: string; kind: EntityKind; entity_id: string }>(
    `WITH gone AS (
       SELECT k.t AS tenant_id, k.k AS kind, k.e AS entity_id
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(t, k, e)
        WHERE CASE k.k
                WHEN 'gateway' THEN NOT EXISTS (SELECT 1 FROM gateways g WHERE g.tenant_id = k.t AND g.gw_eui = k.e)
                ELSE NOT EXISTS (SELECT 1 FROM sensor_devices d
                                  WHERE d.tenant_id = k.t AND d.dev_eui = k.e AND d.status = 'active')
                 AND NOT EXISTS (SELECT 1 FROM display_devices d
                                  WHERE d.tenant_id = k.t AND d.dev_eui = k.e AND d.status = 'active')
              END)
     UPDATE liveness_states l SET next_check_at = NULL, updated_at = now()
       FROM gone WHERE l.tenant_id = gone.tenant_id AND l.kind = gone.kind AND l.entity_id = gone.entity_id
     RETURNING l.tenant_id, l.kind, l.entity_id`,
    [due.map((r) => r.tenant_id), due.map((r) => r.kind), due.map((r) => r.entity_id)],
  );
  return new Set(rows.map((r) => entityKey({ tenantId: r.tenant_id, kind: r.kind, id: r.entity_id })));
}

function reduceInto(
  entities: Map<string, Entity>,
  key: EntityKey,
  event: LivenessEvent,
  effects: LivenessEffect[],
): void {
  const entity = entities.get(entityKey(key));
  if (!entity) return;
  const result = reduceLiveness(entity.state, event, entity.policy);
  entity.state = result.state;
  effects.push(...result.effects);
}

interface EntityRow {
  tenant_id: string;
  kind: EntityKind;
  entity_id: string;
  state: LivenessState;
  silent_after_ms: string;
  clear_after_heard: number;
}

const keyOf = (r: EntityRow): EntityKey => ({ tenantId: r.tenant_id, kind: r.kind, id: r.entity_id });
const entityOf = (r: EntityRow): Entity => ({
  state: r.state,
  policy: { silentAfterMs: Number(r.silent_after_ms), clearAfterHeard: r.clear_after_heard },
});

async function gatewayTenants(client: PoolClient, gwEuis: readonly string[]): Promise<Map<string, string>> {
  if (gwEuis.length === 0) return new Map();
  const { rows } = await client.query<{ tenant_id: string; gw_eui: string }>(
    'SELECT tenant_id, gw_eui FROM gateways WHERE gw_eui = ANY($1::text[])',
    [[...gwEuis]],
  );
  return new Map(rows.map((r) => [r.gw_eui, r.tenant_id]));
}

/** The policy of each entity heard: a device's own interval when it has one, else the default. */
async function policiesOf(
  client: PoolClient,
  keys: readonly EntityKey[],
  settings: LivenessSettings,
): Promise<Map<string, EntityKey & { policy: LivenessPolicy }>> {
  const devices = keys.filter((k) => k.kind === 'device');
  const { rows } = await client.query<{ tenant_id: string; dev_eui: string; s: number }>(
    `SELECT d.tenant_id, d.dev_eui, d.expected_uplink_interval_s AS s FROM sensor_devices d
       JOIN unnest($1::uuid[], $2::text[]) AS k(t, e) ON d.tenant_id = k.t AND d.dev_eui = k.e
      WHERE d.expected_uplink_interval_s IS NOT NULL`,
    [devices.map((k) => k.tenantId), devices.map((k) => k.id)],
  );
  const intervals = new Map(rows.map((r) => [`${r.tenant_id}/device/${r.dev_eui}`, r.s * 1000]));
  const policies = new Map<string, EntityKey & { policy: LivenessPolicy }>();
  for (const k of keys)
    policies.set(entityKey(k), {
      ...k,
      policy:
        k.kind === 'device'
          ? devicePolicy(intervals.get(entityKey(k)) ?? settings.deviceIntervalMs)
          : gatewayPolicy(settings.gatewaySilentMinutes),
    });
  return policies;
}

/** Creates missing rows and locks all, in key order, in ONE statement (see processors/rollups/apply.ts). */
async function lockEntities(
  client: PoolClient,
  policies: Map<string, EntityKey & { policy: LivenessPolicy }>,
): Promise<Map<string, Entity>> {
  const all = [...policies.values()];
  const { rows } = await client.query<EntityRow>(
    `INSERT INTO liveness_states (tenant_id, kind, entity_id, state, silent_after_ms, clear_after_heard)
     SELECT t, k, e, s, sa, ch
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::int[])
            AS u(t, k, e, s, sa, ch) ORDER BY t, k, e
     ON CONFLICT (tenant_id, kind, entity_id) DO UPDATE SET updated_at = liveness_states.updated_at
     RETURNING tenant_id, kind, entity_id, state, silent_after_ms, clear_after_heard`,
    [
      all.map((k) => k.tenantId),
      all.map((k) => k.kind),
      all.map((k) => k.id),
      all.map((k) => JSON.stringify(initialLivenessState(k.kind, k.tenantId, k.id))),
      all.map((k) => k.policy.silentAfterMs),
      all.map((k) => k.policy.clearAfterHeard),
    ],
  );
  // The policy is the one heard under now (a changed interval applies from the next frame on).
  return new Map(
    rows.map((r) => {
      const key = entityKey(keyOf(r));
      return [key, { state: r.state, policy: policies.get(key)?.policy ?? entityOf(r).policy }];
    }),
  );
}

/**
 * When the tick must look again: when the silence limit is reached, unless an alert is open and nothing was
 * heard since (then only a frame can change anything).
 */
function nextCheckAt(entity: Entity): number | null {
  const { lastHeard, alert } = entity.state;
  if (lastHeard === null || (alert !== null && alert.heardSince === 0)) return null;
  return lastHeard + entity.policy.silentAfterMs;
}

async function saveEntities(client: PoolClient, entities: Map<string, Entity>): Promise<void> {
  const all = [...entities.values()];
  if (all.length === 0) return;
  await client.query(
    `UPDATE liveness_states l
        SET state = u.s, silent_after_ms = u.sa, clear_after_heard = u.ch,
            next_check_at = to_timestamp(u.nc / 1000.0), updated_at = now()
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::int[], $7::float8[])
            AS u(t, k, e, s, sa, ch, nc)
      WHERE l.tenant_id = u.t AND l.kind = u.k AND l.entity_id = u.e`,
    [
      all.map((e) => e.state.tenantId),
      all.map((e) => e.state.kind),
      all.map((e) => e.state.id),
      all.map((e) => JSON.stringify(e.state)),
      all.map((e) => e.policy.silentAfterMs),
      all.map((e) => e.policy.clearAfterHeard),
      all.map(nextCheckAt),
    ],
  );
}

/**
 * The entities' last heard times onto the rows the API and the dashboards read (`last_seen_at` of
 * sensor_devices / display_devices for a device, of gateways for a gateway; telemetry columns, not audited),
 * never moved back by an out-of-order frame. The entities' liveness_states rows are locked by this transaction,
 * so two consumers sharing a gateway update its row one after the other; rows held by others are skipped.
 */
async function recordLastSeen(client: PoolClient, entities: Map<string, Entity>): Promise<void> {
  const heard = [...entities.values()].filter(
    (e): e is Entity & { state: { tenantId: string; lastHeard: number } } =>
      e.state.tenantId !== null && e.state.lastHeard !== null,
  );
  const targets = [
    { table: 'sensor_devices', column: 'dev_eui', kind: 'device' },
    { table: 'display_devices', column: 'dev_eui', kind: 'device' },
    { table: 'gateways', column: 'gw_eui', kind: 'gateway' },
  ] as const;
  for (const { table, column, kind } of targets) {
    const rows = heard.filter((e) => e.state.kind === kind);
    if (rows.length === 0) continue;
    // Table and column names come from the constant list above, never from input.
    // SKIP LOCKED: a row an API request holds (an edit of the device) is not waited for, so the batch never
    // waits on, or deadlocks with, a request; its last_seen_at moves with the device's next frame.
    await client.query(
      `UPDATE ${table} d SET last_seen_at = to_timestamp(u.at / 1000.0)
         FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS u(t, id, at)
        WHERE d.tenant_id = u.t AND d.${column} = u.id
          AND (d.last_seen_at IS NULL OR d.last_seen_at < to_timestamp(u.at / 1000.0))
          AND (d.tenant_id, d.${column}) IN (
                SELECT l.tenant_id, l.${column} FROM ${table} l
                  JOIN unnest($1::uuid[], $2::text[]) AS k(t, id) ON l.tenant_id = k.t AND l.${column} = k.id
                   FOR UPDATE OF l SKIP LOCKED)`,
      [rows.map((e) => e.state.tenantId), rows.map((e) => e.state.id), rows.map((e) => e.state.lastHeard)],
    );
  }
}

async function writeAlerts(
  client: PoolClient,
  effects: readonly LivenessEffect[],
  settings: LivenessSettings,
): Promise<LivenessResult> {
  const alerts: LivenessAlertRecord[] = effects.flatMap((e) =>
    e.tenantId === null
      ? []
      : [
          {
            eventId: e.eventId,
            tenantId: e.tenantId,
            devEui: e.kind === 'device' ? e.id : null,
            kind: e.kind,
            entityId: e.id,
            state: e.state,
            time: e.at,
            lastHeard: e.lastHeard,
            alertId: e.alertId,
          },
        ],
  );
  const raised = alerts.filter((a) => a.state === 'raised');
  const cleared = alerts.filter((a) => a.state === 'cleared');
  if (raised.length > 0)
    await client.query(
      `INSERT INTO liveness_alerts (tenant_id, alert_id, kind, entity_id, raised_at, last_heard_at)
       SELECT t, a, k, e, to_timestamp(r / 1000.0), to_timestamp(h / 1000.0)
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS u(t, a, k, e, r, h)
       ON CONFLICT DO NOTHING`,
      [
        raised.map((a) => a.tenantId),
        raised.map((a) => a.alertId),
        raised.map((a) => a.kind),
        raised.map((a) => a.entityId),
        raised.map((a) => a.time),
        raised.map((a) => a.lastHeard),
      ],
    );
  if (cleared.length > 0)
    await client.query(
      `UPDATE liveness_alerts l
          SET cleared_at = to_timestamp(u.c / 1000.0), clear_event_id = u.ce, last_heard_at = to_timestamp(u.h / 1000.0),
              updated_at = now()
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::float8[], $5::float8[]) AS u(t, a, ce, c, h)
        WHERE l.tenant_id = u.t AND l.alert_id = u.a AND l.cleared_at IS NULL`,
      [
        cleared.map((a) => a.tenantId),
        cleared.map((a) => a.alertId),
        cleared.map((a) => a.eventId),
        cleared.map((a) => a.time),
        cleared.map((a) => a.lastHeard),
      ],
    );
  const outbox: OutboxMessage[] = [];
  for (const alert of alerts)
    outbox.push({
      tenantId: alert.tenantId,
      id: alert.eventId,
      time: alert.time,
      topic: settings.alertsTopic,
      key: alert.entityId,
      value: await settings.encode(alert),
    });
  return { outbox, alerts };
}
