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
