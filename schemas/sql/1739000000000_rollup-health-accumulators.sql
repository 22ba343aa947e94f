-- Device health accumulators move from the site's rollup state (rollup_states.state->'health') onto the health
-- rows themselves (issue 6, item 4). The site state held, per device, every 5-minute and hourly bucket of the
-- late horizon with the event ids seen in it, and was rewritten whole by every uplink batch: its size grew with
-- the site's device count and uplink rate. Now an uplink batch reads and writes only the accumulators of its own
-- (device, bucket) rows, and the site state holds the space changes and the watermark.
--
-- accumulator: processors/rollups/reduce.ts HealthAccumulator as JSON (event ids seen in the bucket, for
-- duplicate detection, and the running sums behind the means). NULL once the late horizon has passed the bucket
-- (the rollup tick drops it: no uplink can change the row any more), and on rows written before this migration
-- whose site state no longer held them.

-- Up Migration

ALTER TABLE device_health_5m
  ADD COLUMN accumulator jsonb CHECK (accumulator IS NULL OR jsonb_typeof(accumulator) = 'object');
ALTER TABLE device_health_1h
  ADD COLUMN accumulator jsonb CHECK (accumulator IS NULL OR jsonb_typeof(accumulator) = 'object');
-- The rollup tick drops accumulators once the late horizon has passed their bucket: these partial indexes hold
-- only the rows still carrying one (about a day's worth), so finding them never scans old chunks (tenant_id
-- first, like every index here; the partial index is small enough to read whole).
CREATE INDEX device_health_5m_accumulating ON device_health_5m (tenant_id, bucket) WHERE accumulator IS NOT NULL;
CREATE INDEX device_health_1h_accumulating ON device_health_1h (tenant_id, bucket) WHERE accumulator IS NOT NULL;

-- Move the accumulators still held in site states onto their rows, then drop them from the states.
UPDATE device_health_5m h SET accumulator = a.value
  FROM rollup_states r, jsonb_each(r.state->'health') AS d(dev_eui, buckets), jsonb_each(d.buckets->'5m') AS a
 WHERE h.tenant_id = r.tenant_id AND h.dev_eui = d.dev_eui AND h.bucket = to_timestamp(a.key::bigint / 1000.0);
UPDATE device_health_1h h SET accumulator = a.value
  FROM rollup_states r, jsonb_each(r.state->'health') AS d(dev_eui, buckets), jsonb_each(d.buckets->'1h') AS a
 WHERE h.tenant_id = r.tenant_id AND h.dev_eui = d.dev_eui AND h.bucket = to_timestamp(a.key::bigint / 1000.0);
UPDATE rollup_states SET state = jsonb_set(state, '{health}', '{}'::jsonb) WHERE state->'health' <> '{}'::jsonb;

-- Down Migration

-- Back into the state of the site each device's space belongs to now (accumulators of unassigned devices are lost).
UPDATE rollup_states r SET state = jsonb_set(r.state, '{health}', coalesce((
  SELECT jsonb_object_agg(x.dev_eui, jsonb_build_object('5m', x.m5, '1h', x.h1))
    FROM (
      SELECT d.dev_eui,
             coalesce((SELECT jsonb_object_agg((extract(epoch FROM h.bucket) * 1000)::bigint::text, h.accumulator)
                         FROM device_health_5m h
                        WHERE h.tenant_id = d.tenant_id AND h.dev_eui = d.dev_eui AND h.accumulator IS NOT NULL),
                      '{}'::jsonb) AS m5,
             coalesce((SELECT jsonb_object_agg((extract(epoch FROM h.bucket) * 1000)::bigint::text, h.accumulator)
                         FROM device_health_1h h
                        WHERE h.tenant_id = d.tenant_id AND h.dev_eui = d.dev_eui AND h.accumulator IS NOT NULL),
                      '{}'::jsonb) AS h1
        FROM sensor_devices d JOIN spaces s ON s.tenant_id = d.tenant_id AND s.id = d.space_id
       WHERE d.tenant_id = r.tenant_id AND s.site_id = r.site_id
    ) AS x
   WHERE x.m5 <> '{}'::jsonb OR x.h1 <> '{}'::jsonb
), '{}'::jsonb));
DROP INDEX IF EXISTS device_health_1h_accumulating;
DROP INDEX IF EXISTS device_health_5m_accumulating;
ALTER TABLE device_health_1h DROP COLUMN IF EXISTS accumulator;
ALTER TABLE device_health_5m DROP COLUMN IF EXISTS accumulator;
