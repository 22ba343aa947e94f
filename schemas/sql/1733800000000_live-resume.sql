-- Live updates' resume cursor (issue 5, item 6; api/live/replay.ts): a position on every row the WebSocket replay
-- reads, so a reconnecting client gets what was recorded after the event it saw last, even a change recorded later
-- with an earlier time (another partition, a late uplink), which the former (time, id) cursor skipped.
--
-- One sequence for every replayable kind, so a replay merges occupancy changes and liveness alerts in one order
-- and any replayable event's id is a cursor. Filled by the database (column DEFAULT, and a trigger for an alert's
-- clear, which updates the raise's row in place): writers do not change. The position is taken at insert, not at
-- commit: it is not commit order for writes that overlap in time, nor the order a client receives records of
-- different partitions in. Migration 1734500000000 adds when each position was taken, for the replay's lookback
-- over positions just before the cursor; see the README (Live updates) for what is guaranteed.
--
-- Rows written before this migration keep a NULL position: they are not replayed, and a cursor among them asks
-- the client to resync (they are older than any replay window by the time it matters). No table rewrite.

-- Up Migration

CREATE SEQUENCE live_event_seq AS bigint;
ALTER SEQUENCE live_event_seq OWNER TO parking_owner;

ALTER TABLE occupancy_changes ADD COLUMN seq bigint;
ALTER TABLE occupancy_changes ALTER COLUMN seq SET DEFAULT nextval('live_event_seq');
CREATE INDEX occupancy_changes_seq ON occupancy_changes (tenant_id, seq) WHERE seq IS NOT NULL;

-- A raise's position is its row's; the clear's is taken when the row is cleared. raised_last_heard_at keeps the
-- raise's own lastHeard (the clear overwrites last_heard_at), so a replayed raise equals the live one.
ALTER TABLE liveness_alerts
  ADD COLUMN raised_seq bigint,
  ADD COLUMN cleared_seq bigint,
  ADD COLUMN raised_last_heard_at timestamptz;
ALTER TABLE liveness_alerts ALTER COLUMN raised_seq SET DEFAULT nextval('live_event_seq');
UPDATE liveness_alerts SET raised_last_heard_at = last_heard_at WHERE cleared_at IS NULL;
CREATE INDEX liveness_alerts_raised_seq ON liveness_alerts (tenant_id, raised_seq) WHERE raised_seq IS NOT NULL;
CREATE INDEX liveness_alerts_cleared_seq ON liveness_alerts (tenant_id, cleared_seq) WHERE cleared_seq IS NOT NULL;
CREATE INDEX liveness_alerts_clear_event ON liveness_alerts (tenant_id, clear_event_id)
  WHERE clear_event_id IS NOT NULL;
-- A resume by time (`?since=`) reads raises and clears by their time.
CREATE INDEX liveness_alerts_raised_at ON liveness_alerts (tenant_id, raised_at);
CREATE INDEX liveness_alerts_cleared_at ON liveness_alerts (tenant_id, cleared_at) WHERE cleared_at IS NOT NULL;

CREATE FUNCTION app_liveness_alert_positions() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      NEW.raised_last_heard_at := NEW.last_heard_at;
    ELSIF OLD.clear_event_id IS NULL AND NEW.clear_event_id IS NOT NULL THEN
      NEW.cleared_seq := nextval('live_event_seq');
    END IF;
    RETURN NEW;
  END
  $$;
ALTER FUNCTION app_liveness_alert_positions() OWNER TO parking_owner;
CREATE TRIGGER live_positions BEFORE INSERT OR UPDATE ON liveness_alerts
  FOR EACH ROW EXECUTE FUNCTION app_liveness_alert_positions();
-- The clear's position is bookkeeping like the clear itself: keep it out of the audit (as before this migration).
DROP TRIGGER audit ON liveness_alerts;
SELECT app_protect_tenant_table('liveness_alerts', '{cleared_at,clear_event_id,updated_at,cleared_seq}');

-- Writers take positions through the column defaults and the trigger (SECURITY INVOKER).
GRANT USAGE ON SEQUENCE live_event_seq TO parking_pipeline;

-- Down Migration
DROP TRIGGER IF EXISTS audit ON liveness_alerts;
SELECT app_protect_tenant_table('liveness_alerts', '{cleared_at,clear_event_id,updated_at}');
DROP TRIGGER IF EXISTS live_positions ON liveness_alerts;
DROP FUNCTION IF EXISTS app_liveness_alert_positions();
DROP INDEX IF EXISTS liveness_alerts_cleared_at;
DROP INDEX IF EXISTS liveness_alerts_raised_at;
DROP INDEX IF EXISTS liveness_alerts_clear_event;
DROP INDEX IF EXISTS liveness_alerts_cleared_seq;
DROP INDEX IF EXISTS liveness_alerts_raised_seq;
ALTER TABLE liveness_alerts
  DROP COLUMN IF EXISTS raised_last_heard_at,
  DROP COLUMN IF EXISTS cleared_seq,
  DROP COLUMN IF EXISTS raised_seq;
DROP INDEX IF EXISTS occupancy_changes_seq;
ALTER TABLE occupancy_changes DROP COLUMN IF EXISTS seq;
DROP SEQUENCE IF EXISTS live_event_seq;
