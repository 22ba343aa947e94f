/**
 * The one internal envelope for every ChirpStack v4 integration event, whichever way it arrived (MQTT json=true
 * or protobuf, HTTP integration JSON or protobuf, ChirpStack's Kafka integration). A discriminated union on
 * `type`, with the ChirpStack event type names.
 *
 * Every variant promises:
 * - `eventId`: a lowercase UUID, stable across redeliveries and encodings. ChirpStack's `deduplicationId` where
 *   the event has one (up, join, status, ack, location); for txack and log, which have none, a name-based UUID
 *   derived from the event's normalised content (see event-id.ts), so the same event read from JSON and from
 *   protobuf, or delivered twice, gets the same id. `eventIdDerived` says which.
 * - `devEui`: 16 uppercase hex characters.
 * - `applicationId`, and the tenant as ChirpStack knows it (`tenantId`, `tenantName`; null when ChirpStack sent
 *   none) — the platform's own tenant is resolved from the DevEUI later.
 * - `time`: when it happened in epoch milliseconds (ChirpStack's event time); the receive time when ChirpStack
 *   gave none.
 */
export const chirpstackEventTypes = ['up', 'join', 'status', 'ack', 'txack', 'log', 'location'] as const;
export type ChirpStackEventType = (typeof chirpstackEventTypes)[number];

export type EventEncoding = 'json' | 'protobuf';

export interface EventBase {
  eventId: string;
  eventIdDerived: boolean;
  devEui: string;
  applicationId: string;
  applicationName: string | null;
  tenantId: string | null;
  tenantName: string | null;
  deviceName: string | null;
  deviceProfileId: string | null;
  deviceProfileName: string | null;
  tags: Record<string, string>;
  time: number;
}

export interface RxInfo {
  gatewayId: string;
  /** dBm. 0 when omitted: ChirpStack's JSON omits a 0, and protobuf cannot tell 0 from unset. */
  rssi: number;
  /** dB, 0 when omitted (as rssi). */
  snr: number;
}

export interface UpEvent extends EventBase {
  type: 'up';
  devAddr: string | null;
  fCnt: number;
  fPort: number;
  confirmed: boolean;
  adr: boolean;
  dr: number;
  /** The FRMPayload as received (empty when ChirpStack sent no data). */
  payload: Buffer;
  /** ChirpStack's device-profile codec output; present only when a codec ran. */
  object: Record<string, unknown> | undefined;
  rxInfo: RxInfo[];
  /** Hz; null when ChirpStack sent no txInfo. */
  frequency: number | null;
  regionConfigId: string | null;
}

export interface JoinEvent extends EventBase {
  type: 'join';
  devAddr: string | null;
  regionConfigId: string | null;
}

export interface StatusEvent extends EventBase {
  type: 'status';
  /** Demodulation margin (SNR headroom) of the DevStatusAns, dB. */
  margin: number;
  externalPowerSource: boolean;
  /** Battery level in percent (0-100); null when the device cannot measure it or is on external power. */
  batteryLevel: number | null;
}

export interface AckEvent extends EventBase {
  type: 'ack';
  queueItemId: string | null;
  acknowledged: boolean;
  fCntDown: number;
}

export interface TxAckEvent extends EventBase {
  type: 'txack';
  /** ChirpStack's downlink id (uint32). */
  downlinkId: number;
  queueItemId: string | null;
  fCntDown: number;
  gatewayId: string | null;
}

export const logLevels = ['INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface LogEvent extends EventBase {
  type: 'log';
  level: LogLevel;
  /** ChirpStack LogCode name, e.g. UPLINK_CODEC, UPLINK_F_CNT_RETRANSMISSION. */
  code: string;
  description: string;
  context: Record<string, string>;
}

export interface LocationEvent extends EventBase {
  type: 'location';
  latitude: number;
  longitude: number;
  /** Metres. */
  altitude: number;
  /** ChirpStack LocationSource name, e.g. GPS, GEO_RESOLVER_TDOA. */
  source: string;
  /** Metres. */
  accuracy: number;
}

export type ChirpStackEvent =
  UpEvent | JoinEvent | StatusEvent | AckEvent | TxAckEvent | LogEvent | LocationEvent;
