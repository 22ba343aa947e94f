import type { PoolClient } from '../../lib/db/pool.js';

/** Space counts by state, one row per site (site_id null: spaces without a site), ordered by site name. */
export interface SiteCounts {
  site_id: string | null;
  site_name: string | null;
  spaces: number;
  occupied: number;
  free: number;
  reserved: number;
  maintenance: number;
  unknown: number;
}

export type Counts = Omit<SiteCounts, 'site_id' | 'site_name'>;

/** Occupancy now: the one query behind the v6 dashboard summary and the v5 space statistics. */
export async function occupancyBySite(db: PoolClient, tenantId: string): Promise<SiteCounts[]> {
  const { rows } = await db.query<SiteCounts>(
    `SELECT s.site_id, min(st.name) AS site_name, count(*)::int AS spaces,
            count(*) FILTER (WHERE s.state = 'occupied')::int AS occupied,
            count(*) FILTER (WHERE s.state = 'free')::int AS free,
            count(*) FILTER (WHERE s.state = 'reserved')::int AS reserved,
            count(*) FILTER (WHERE s.state = 'maintenance')::int AS maintenance,
            count(*) FILTER (WHERE s.state = 'unknown')::int AS unknown
       FROM spaces s LEFT JOIN sites st ON st.tenant_id = s.tenant_id AND st.id = s.site_id
      WHERE s.tenant_id = $1
      GROUP BY s.site_id ORDER BY min(st.name) NULLS LAST`,
    [tenantId],
  );
  return rows;
}

/** The sum over sites. */
export function totalCounts(rows: readonly Counts[]): Counts {
  return rows.reduce(
    (t, r) => ({
      spaces: t.spaces + r.spaces,
      occupied: t.occupied + r.occupied,
      free: t.free + r.free,
      reserved: t.reserved + r.reserved,
      maintenance: t.maintenance + r.maintenance,
      unknown: t.unknown + r.unknown,
    }),
    { spaces: 0, occupied: 0, free: 0, reserved: 0, maintenance: 0, unknown: 0 },
  );
}

/** occupied / (occupied + free); null when no space reports. */
export function occupancyRate(c: Counts): number | null {
  const reporting = c.occupied + c.free;
  return reporting > 0 ? c.occupied / reporting : null;
}
