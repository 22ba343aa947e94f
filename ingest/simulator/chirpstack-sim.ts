import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { eventTopic } from '../chirpstack/mqtt-topic.js';

/**
 * Builds ChirpStack v4 `up` events exactly as ChirpStack's JSON marshaller writes them (MQTT json=true and the
 * HTTP integration): protobuf defaults are omitted (fCnt 0, fPort 0, adr false), `data` is base64, `object`
 * only when a codec ran. Used by the demo, the tests and the load generators.
 */
export interface SimulatedUplink {
  devEui: string;
  applicationId?: string;
  tenantId?: string;
  fCnt: number;
  fPort: number;
  payload: Buffer;
  time?: Date;
  deduplicationId?: string;
  gateways?: Array<{ gatewayId: string; rssi: number; snr: number }>;
  object?: Record<string, unknown>;
}

export function uplinkEvent(u: SimulatedUplink): Record<string, unknown> {
  const applicationId = u.applicationId ?? '3f1c2a7e-5b8d-4e0f-9a6b-1c2d3e4f5a6b';
  const gateways = u.gateways ?? [{ gatewayId: '0016c001ff10a235', rssi: -97, snr: 7.5 }];
  const event: Record<string, unknown> = {
    deduplicationId: u.deduplicationId ?? randomUUID(),
    time: (u.time ?? new Date()).toISOString(),
    deviceInfo: {
      tenantId: u.tenantId ?? '52f14cd4-c6f1-4fbd-8f87-4025e1d49242',
      tenantName: 'ChirpStack',
      applicationId,
      applicationName: 'parking',
      deviceProfileId: 'a1b2c3d4-0000-4000-8000-000000000001',
      deviceProfileName: 'TBMS100',
      deviceName: `sensor-${u.devEui.toLowerCase()}`,
      devEui: u.devEui.toLowerCase(),
      deviceClassEnabled: 'CLASS_A',
      tags: {},
    },
    devAddr: '01fa2b3c',
    dr: 5,
    confirmed: false,
    rxInfo: gateways.map((g, i) => ({
      gatewayId: g.gatewayId,
      uplinkId: 1000 + i,
      rssi: g.rssi,
      snr: g.snr,
      context: 'AAAAAA==',
      metadata: { region_config_id: 'eu868', region_common_name: 'EU868' },
      crcStatus: 'CRC_OK',
    })),
    txInfo: {
      frequency: 868100000,
      modulation: { lora: { bandwidth: 125000, spreadingFactor: 7, codeRate: 'CR_4_5' } },
    },
  };
  if (u.fCnt !== 0) event['fCnt'] = u.fCnt;
  if (u.fPort !== 0) event['fPort'] = u.fPort;
  if (u.payload.length > 0) event['data'] = u.payload.toString('base64');
  if (u.object) event['object'] = u.object;
  return event;
}

/** A Browan TBMS100 frame (fPort 102) with the given occupancy, 3.6 V and 21 °C. */
export function tbms100Payload(occupied: boolean): Buffer {
  return Buffer.from([occupied ? 1 : 0, 0x0b, 0x35, 0, 0, 0, 0, 0]);
}

/** Publishes one uplink on ChirpStack's MQTT topic layout at QoS 1; resolves when the broker acknowledged. */
export async function publishUplink(
  client: MqttClient,
  u: SimulatedUplink,
): Promise<Record<string, unknown>> {
  const event = uplinkEvent(u);
  await client.publishAsync(
    eventTopic(u.applicationId ?? '3f1c2a7e-5b8d-4e0f-9a6b-1c2d3e4f5a6b', u.devEui, 'up'),
    JSON.stringify(event),
    {
      qos: 1,
    },
  );
  return event;
}
