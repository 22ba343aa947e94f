-- Reservation lifecycle (issue 5 item 5, issue 6 item 2): a `no_show` status, and the bookkeeping of the two
-- pipeline readers of `reservations`:
--   * the lifecycle job (processors/reservations) expires reservations whose end passed, marks no-shows, and
--     publishes every status a reservation reaches (also those the API set: created, cancelled) as a reservation
--     event through the outbox; `announced_status` is the last status it published;
--   * the display tick (processors/display) re-reads the reservations of a space whose status changed since it
--     last looked; `displayed_status` is the status it last synced the space's displays with.
-- Both pick their work up by "status differs from what I last handled" (partial indexes below), so the API needs
-- no access to the outbox or the display state and a change is seen within one tick of each.
--
-- No-show rule (processors/reservations/reduce.ts): a confirmed reservation whose start passed by the grace
-- (default 15 min) while its space was never occupied from the start on — the latest occupancy change at or before
-- the start is not `occupied` and no `occupied` change happened since — becomes `no_show`. A space without a
-- sensor cannot be judged: its reservations only expire. `attendance_checked_at` records that the judgement was
-- made (so it is made once), `arrived_at` the first occupancy seen from the start on.

-- Up Migration
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
  CHECK (status IN ('pending', 'confirmed', 'expired', 'cancelled', 'no_show'));

ALTER TABLE reservations
  ADD COLUMN announced_status text
    CHECK (announced_status IN ('pending', 'confirmed', 'expired', 'cancelled', 'no_show')),
  ADD COLUMN displayed_status text
    CHECK (displayed_status IN ('pending', 'confirmed', 'expired', 'cancelled', 'no_show')),
  ADD COLUMN attendance_checked_at timestamptz,
  ADD COLUMN arrived_at timestamptz;

-- The new columns are the pipeline's bookkeeping: re-create the audit trigger with them as telemetry columns, so
-- the API's changes stay audited and the job's and the display tick's are not (their record is the event).
DROP TRIGGER audit ON reservations;
SELECT app_protect_tenant_table('reservations',
  '{status,updated_at,announced_status,displayed_status,attendance_checked_at,arrived_at}');

-- Reservations made before this migration were never published: do not publish their history now. Live ones are
-- left for the displays to pick up.
UPDATE reservations
   SET announced_status = status,
       displayed_status = CASE WHEN status = 'confirmed' AND upper(during) > now() THEN NULL ELSE status END,
       attendance_checked_at = CASE WHEN lower(during) <= now() THEN now() END;

-- The job's three kinds of work, and the display's: each a small partial index (live or drifted rows only).
CREATE INDEX reservations_unannounced ON reservations (tenant_id, id) WHERE announced_status IS DISTINCT FROM status;
CREATE INDEX reservations_undisplayed ON reservations (tenant_id, space_id)
  WHERE displayed_status IS DISTINCT FROM status;
CREATE INDEX reservations_live_end ON reservations (tenant_id, upper(during))
  WHERE status IN ('pending', 'confirmed');
CREATE INDEX reservations_attendance_due ON reservations (tenant_id, lower(during))
  WHERE status = 'confirmed' AND attendance_checked_at IS NULL;
-- A display's current and next reservations.
CREATE INDEX reservations_space_confirmed ON reservations (tenant_id, space_id, lower(during))
  WHERE status = 'confirmed';

GRANT UPDATE (announced_status, displayed_status, attendance_checked_at, arrived_at) ON reservations
  TO parking_pipeline;

-- Down Migration
REVOKE UPDATE (announced_status, displayed_status, attendance_checked_at, arrived_at) ON reservations
  FROM parking_pipeline;
DROP INDEX IF EXISTS reservations_space_confirmed;
DROP INDEX IF EXISTS reservations_attendance_due;
DROP INDEX IF EXISTS reservations_live_end;
DROP INDEX IF EXISTS reservations_undisplayed;
DROP INDEX IF EXISTS reservations_unannounced;
DROP TRIGGER IF EXISTS audit ON reservations;
SELECT app_protect_tenant_table('reservations', '{status,updated_at}');
ALTER TABLE reservations
  DROP COLUMN IF EXISTS arrived_at,
  DROP COLUMN IF EXISTS attendance_checked_at,
  DROP COLUMN IF EXISTS displayed_status,
  DROP COLUMN IF EXISTS announced_status;
UPDATE reservations SET status = 'expired' WHERE status = 'no_show';
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
  CHECK (status IN ('pending', 'confirmed', 'expired', 'cancelled'));
