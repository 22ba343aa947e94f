import { z } from 'zod';
import { PlatformError } from '../../lib/errors.js';

/**
 * ChirpStack v4 `up` event as its JSON marshaller writes it (MQTT json=true, HTTP integration JSON): fields at
 * their protobuf default are omitted (fCnt 0, fPort 0, adr false, empty rxInfo), `object` appears only when a
 * device-profile codec is configured, `data` is base64 and may be absent for an empty payload.
 */
const rxInfoSchema = z
  .object({
    gatewayId: z.string(),
    rssi: z.number().int().optional(),
    snr: z.number().optional(),
  })
  .passthrough();

export const uplinkEventSchema = z
  .object({
    deduplicationId: z.string().uuid(),
    time: z.string().datetime({ offset: true }).optional(),
    deviceInfo: z
      .object({
        tenantId: z.string().optional(),
        applicationId: z.string().default(''),
        devEui: z.string().regex(/^[0-9a-fA-F]{16}$/, 'devEui must be 16 hex characters'),
        deviceName: z.string().optional(),
      })
      .passthrough(),
    fCnt: z.number().int().min(0).max(0xffffffff).default(0),
    fPort: z.number().int().min(0).max(255).default(0),
    data: z.string().base64().default(''),
    object: z.record(z.unknown()).optional(),
    rxInfo: z.array(rxInfoSchema).default([]),
  })
  .passthrough();

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
  rssi: number | null;
  snr: number | null;
  gatewayIds: string[];
}

/** Parses a JSON `up` event; throws PAYLOAD_INVALID (non-retriable) with the first problem found. */
export function parseUplinkJson(body: Buffer, receivedAt: number): ParsedUplink {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new PlatformError('PAYLOAD_INVALID', 'event body is not valid JSON', { cause: error });
  }
  const result = uplinkEventSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new PlatformError(
      'PAYLOAD_INVALID',
      `not a ChirpStack v4 uplink: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  const e = result.data;
  const rx = e.rxInfo;
  return {
    eventId: e.deduplicationId.toLowerCase(),
    devEui: e.deviceInfo.devEui.toUpperCase(),
    applicationId: e.deviceInfo.applicationId,
    time: e.time ? Date.parse(e.time) : receivedAt,
    fCnt: e.fCnt,
    fPort: e.fPort,
    payload: Buffer.from(e.data, 'base64'),
    object: e.object,
    rssi: rx.length ? Math.max(...rx.map((r) => r.rssi ?? -Infinity)) : null,
    snr: rx.length ? Math.max(...rx.map((r) => r.snr ?? -Infinity)) : null,
    gatewayIds: rx.map((r) => r.gatewayId),
  };
}
