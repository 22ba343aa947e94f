-- Display devices resolve through the same DevEUI directory as sensors (their ChirpStack ack, txack and status
-- events must reach parking.downlink-outcomes.v1 with their tenant), so an assignment change of a display
-- notifies the same channel as a sensor's.

-- Up Migration
CREATE TRIGGER notify_change AFTER INSERT OR DELETE OR UPDATE OF tenant_id, dev_eui, space_id, status
  ON display_devices FOR EACH ROW EXECUTE FUNCTION app_notify_change('sensor_devices_changed', 'dev_eui');

-- Down Migration
DROP TRIGGER IF EXISTS notify_change ON display_devices;
