/**
 * TypeScript shapes of the Avro records in this folder. schemas/avro/records.test.ts checks that every field
 * of each .avsc is here and nothing else, so the schema stays the source of truth.
 */
export type EventSource = 'MQTT' | 'HTTP' | 'WEBHOOK_V5' | 'KAFKA';

export interface UplinkRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  spaceId: string | null;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  fCnt: number;
  fPort: number;
  codec: string;
  occupied: boolean | null;
  batteryVolts: number | null;
  temperatureC: number | null;
  rssi: number | null;
  snr: number | null;
  gatewayIds: string[];
  payload: Buffer;
  /**
   * Added in schema version 2 with default null. Optional here only so records built against version 1 still
   * type-check; the encoder writes null when absent, and a reader always gets a value.
   */
  frameType?: string | null;
  batteryStatus?: BatteryStatus | null;
}

export type BatteryStatus = 'OK' | 'LOW' | 'CRITICAL';

export interface JoinRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  devAddr: string | null;
}

export interface DeviceStatusRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  margin: number;
  externalPowerSource: boolean;
  batteryLevel: number | null;
}

/** parking.device-locations.v1 (device-location.avsc); keyed by devEui so one device's positions stay in order. */
export interface DeviceLocationRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  latitude: number;
  longitude: number;
  altitude: number;
  locationSource: string;
  accuracy: number;
}

export type DownlinkOutcomeKind = 'TXACK' | 'ACK';

export interface DownlinkOutcomeRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  kind: DownlinkOutcomeKind;
  queueItemId: string | null;
  acknowledged: boolean | null;
  fCntDown: number;
  downlinkId: number | null;
  gatewayId: string | null;
}

export interface OrphanUplinkRecord {
  eventId: string;
  tenantId: string | null;
  devEui: string;
  time: number;
  receivedAt: number;
  source: EventSource;
  applicationId: string;
  chirpstackTenantId: string | null;
  chirpstackTenantName: string | null;
  deviceName: string | null;
  fCnt: number;
  fPort: number;
  payload: Buffer;
}

export interface DeadLetterRecord {
  eventId: string;
  tenantId: string | null;
  devEui: string | null;
  source: string;
  errorCode: string;
  reason: string;
  receivedAt: number;
  contentType: string;
  origin: string;
  original: Buffer;
}

/** parking.occupancy-changes.v1 (occupancy-change.avsc); keyed by spaceId so one space's changes stay in order. */
export interface OccupancyChangeRecord {
  eventId: string;
  tenantId: string;
  devEui: string;
  spaceId: string;
  time: number;
  confirmedAt: number;
  state: 'free' | 'occupied';
  previousState: 'unknown' | 'free' | 'occupied';
  previousDurationMs: number | null;
  uplinkEventId: string;
}

/** parking.liveness-alerts.v1 (liveness-alert.avsc); keyed by entityId so one entity's alerts stay in order. */
export interface LivenessAlertRecord {
  eventId: string;
  tenantId: string;
  devEui: string | null;
  kind: 'device' | 'gateway';
  entityId: string;
  state: 'raised' | 'cleared';
  time: number;
  lastHeard: number;
  alertId: string;
}

/** parking.reservation-events.v1 (reservation-event.avsc); keyed by spaceId so one space's events stay in order. */
export interface ReservationEventRecord {
  eventId: string;
  tenantId: string;
  devEui: string | null;
  reservationId: string;
  spaceId: string;
  type: 'created' | 'confirmed' | 'cancelled' | 'expired' | 'no-show';
  status: 'pending' | 'confirmed' | 'cancelled' | 'expired' | 'no_show';
  previousStatus: 'pending' | 'confirmed' | 'cancelled' | 'expired' | 'no_show' | null;
  startsAt: number;
  endsAt: number;
  userId: string | null;
  time: number;
}
