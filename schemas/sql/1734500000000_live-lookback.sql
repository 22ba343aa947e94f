-- Live updates' resume lookback (api/live/replay.ts): when each replayable event's position was taken.
--
-- A position (`live_event_seq`, migration 1733800000000) is taken at INSERT, not at commit, and records of
-- different partitions reach a client out of position order (the outbox relay batches, the API fetches partitions
-- independently). So a client's last id is not a point before which it has everything: an event with a lower
-- position can reach it after the cursor's, or still be in flight. On resume the API therefore also replays the
-- events positioned before the cursor that were recorded at most API_LIVE_REPLAY_LOOKBACK_S before it; these
-- columns say when.
--
-- "Recorded" is the moment the position was taken: clock_timestamp() evaluated with the position (same row's
-- defaults, or the same trigger step for a clear), not now() (its transaction's start), so the lookback measures
-- the distance between two positions whatever the length of the writing transactions.
--   occupancy_changes.recorded_at            the change's row was inserted
--   liveness_alerts.raised_recorded_at       the raise's row was inserted
--   liveness_alerts.cleared_recorded_at      the clear updated that row (set by the trigger with cleared_seq)
--
-- Rows that exist before this migration get the migration's time (the columns are added with DEFAULT now(), a
-- stable default: PostgreSQL stores it once as the column's missing value and TimescaleDB adds it to every chunk
-- the same way, so neither table is rewritten; the default then becomes clock_timestamp() for new rows only). A
-- cursor among those rows looks back over all of them until the lookback has passed: more than the replay bound
-- answers `resync`. Acceptable for the first minutes after the deployment.

-- Up Migration

ALTER TABLE occupancy_changes ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE occupancy_changes ALTER COLUMN recorded_at SET DEFAULT clock_timestamp();
-- The lookback reads (tenant, recorded_at) from its start (replay.ts says why that range is bounded).
-- Partial like the position's index: rows without a position (older than 1733800000000) are never read.
CREATE INDEX occupancy_changes_recorded_at ON occupancy_changes (tenant_id, recorded_at) WHERE seq IS NOT NULL;

ALTER TABLE liveness_alerts
  ADD COLUMN raised_recorded_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN cleared_recorded_at timestamptz;
ALTER TABLE liveness_alerts ALTER COLUMN raised_recorded_at SET DEFAULT clock_timestamp();
CREATE INDEX liveness_alerts_raised_recorded_at ON liveness_alerts (tenant_id, raised_recorded_at)
  WHERE raised_seq IS NOT NULL;
CREATE INDEX liveness_alerts_cleared_recorded_at ON liveness_alerts (tenant_id, cleared_recorded_at)
  WHERE cleared_seq IS NOT NULL;

CREATE OR REPLACE FUNCTION app_liveness_alert_positions() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public
  AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      NEW.raised_last_heard_at := NEW.last_heard_at;
    ELSIF OLD.clear_event_id IS NULL AND NEW.clear_event_id IS NOT NULL THEN
      NEW.cleared_seq := nextval('live_event_seq');
      NEW.cleared_recorded_at := clock_timestamp();
    END IF;
    RETURN NEW;
  END
  $$;

-- The clear's recording time is bookkeeping like its position: out of the audit. Replaced before the backfill
-- below, so the backfill writes no audit rows.
DROP TRIGGER audit ON liveness_alerts;
SELECT app_protect_tenant_table('liveness_alerts',
  '{cleared_at,clear_event_id,updated_at,cleared_seq,cleared_recorded_at}');
UPDATE liveness_alerts SET cleared_recorded_at = now() WHERE cleared_seq IS NOT NULL;

-- Down Migration
-- The audit's WHEN names every watched column: dropped first, re-created once the columns are gone.
DROP TRIGGER IF EXISTS audit ON liveness_alerts;
DROP TRIGGER IF EXISTS audit_update ON liveness_alerts;
CREATE OR REPLACE FUNCTION app_liveness_alert_positions() RETURNS trigger
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
DROP INDEX IF EXISTS liveness_alerts_cleared_recorded_at;
DROP INDEX IF EXISTS liveness_alerts_raised_recorded_at;
ALTER TABLE liveness_alerts DROP COLUMN IF EXISTS cleared_recorded_at, DROP COLUMN IF EXISTS raised_recorded_at;
SELECT app_protect_tenant_table('liveness_alerts', '{cleared_at,clear_event_id,updated_at,cleared_seq}');
DROP INDEX IF EXISTS occupancy_changes_recorded_at;
ALTER TABLE occupancy_changes DROP COLUMN IF EXISTS recorded_at;
