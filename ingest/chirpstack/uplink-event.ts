import type { UpEvent } from './event-types.js';
import { parseChirpStackEvent } from './parse-event.js';

/**
 * The flat view of an `up` event the bridge publishes from. Kept for the bridge; new code should use
 * parseChirpStackEvent and the UpEvent envelope directly.
 */
export interface ParsedUplink {
  eventId: string;
  devEui: string;
  applicationId: string;
  /** Network receive time in epoch ms; the bridge's receive time when ChirpStack gave none. */
  time: number;
  fCnt: number;
  fPort: number;
  payload: Buffer;
  object: Record<string, unknown> | undefined;
  /** Best RSSI (dBm) and SNR (dB) over the receiving gateways; null when no gateway is listed. */
  rssi: number | null;
  snr: number | null;
  gatewayIds: string[];
}

export function toParsedUplink(up: UpEvent): ParsedUplink {
  const rx = up.rxInfo;
  return {
    eventId: up.eventId,
    devEui: up.devEui,
    applicationId: up.applicationId,
    time: up.time,
    fCnt: up.fCnt,
    fPort: up.fPort,
    payload: up.payload,
    object: up.object,
    rssi: rx.length ? Math.max(...rx.map((r) => r.rssi)) : null,
    snr: rx.length ? Math.max(...rx.map((r) => r.snr)) : null,
    gatewayIds: rx.map((r) => r.gatewayId),
  };
}

/** Parses a JSON `up` event; throws PAYLOAD_INVALID (non-retriable) with the first problem found. */
export function parseUplinkJson(body: Buffer, receivedAt: number): ParsedUplink {
  return toParsedUplink(parseChirpStackEvent('up', body, 'json', receivedAt) as UpEvent);
}
