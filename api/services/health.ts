import type { PoolClient } from '../../lib/db/pool.js';
import { gatewayOnlineWithinS } from './devices.js';

/** Devices and gateways of a tenant as the dashboard shows them, with the liveness alerts still open. */
export interface HealthSummary {
  sensors: { total: number; active: number; heard24h: number; silent: number };
  displays: { total: number; active: number; silent: number };
  gateways: { total: number; online: number; silent: number };
  /** The open liveness alerts, newest first, at most `alertLimit`. */
  openAlerts: Array<{
    alert_id: string;
    kind: 'device' | 'gateway';
    entity_id: string;
    raised_at: Date;
    last_heard_at: Date;
  }>;
  openAlertCount: number;
}

/**
 * One statement: device and gateway counts (decommissioned devices are not counted), what was heard (sensors in
 * the last 24 h; gateways within the online window the gateway pages use), and the open liveness alerts (silent:
 * a device or gateway the liveness processor has raised an alert for and not cleared).
 */
export async function healthSummary(
  db: PoolClient,
  tenantId: string,
  alertLimit = 10,
): Promise<HealthSummary> {
  const { rows } = await db.query<{
    sensors: HealthSummary['sensors'];
    displays: HealthSummary['displays'];
    gateways: HealthSummary['gateways'];
    open_alerts: Array<HealthSummary['openAlerts'][number] & { raised_at: string; last_heard_at: string }>;
    open_alert_count: number;
  }>(
    `WITH open_alerts AS (
       SELECT alert_id, kind, entity_id, raised_at, last_heard_at FROM liveness_alerts
        WHERE tenant_id = $1 AND cleared_at IS NULL
     )
     SELECT
       (SELECT json_build_object(
                 'total', count(*)::int,
                 'active', count(*) FILTER (WHERE status = 'active')::int,
                 'heard24h', count(*) FILTER (WHERE last_seen_at > now() - interval '24 hours')::int,
                 'silent', count(*) FILTER (WHERE dev_eui IN (SELECT entity_id FROM open_alerts WHERE kind = 'device'))::int)
          FROM sensor_devices WHERE tenant_id = $1 AND status <> 'decommissioned') AS sensors,
       (SELECT json_build_object(
                 'total', count(*)::int,
                 'active', count(*) FILTER (WHERE status = 'active')::int,
                 'silent', count(*) FILTER (WHERE dev_eui IN (SELECT entity_id FROM open_alerts WHERE kind = 'device'))::int)
          FROM display_devices WHERE tenant_id = $1 AND status <> 'decommissioned') AS displays,
       (SELECT json_build_object(
                 'total', count(*)::int,
                 'online', count(*) FILTER (WHERE last_seen_at > now() - make_interval(secs => $2))::int,
                 'silent', count(*) FILTER (WHERE gw_eui IN (SELECT entity_id FROM open_alerts WHERE kind = 'gateway'))::int)
          FROM gateways WHERE tenant_id = $1) AS gateways,
       (SELECT coalesce(json_agg(a ORDER BY a.raised_at DESC, a.alert_id), '[]'::json)
          FROM (SELECT * FROM open_alerts ORDER BY raised_at DESC, alert_id LIMIT $3) a) AS open_alerts,
       (SELECT count(*)::int FROM open_alerts) AS open_alert_count`,
    [tenantId, gatewayOnlineWithinS, alertLimit],
  );
  const r = rows[0]!;
  return {
    sensors: r.sensors,
    displays: r.displays,
    gateways: r.gateways,
    openAlerts: r.open_alerts.map((a) => ({
      ...a,
      raised_at: new Date(a.raised_at),
      last_heard_at: new Date(a.last_heard_at),
    })),
    openAlertCount: r.open_alert_count,
  };
}
