/**
 * A downlink as ChirpStack v4's MQTT integration takes it: topic `application/{applicationId}/device/{devEui}/
 * command/down`, body the JSON of a DeviceQueueItem. Pure.
 *
 * Promises: the DevEUI is lower-case hex in both the topic and the body (ChirpStack prints EUIs lower-case and
 * rejects a body whose devEui differs from the topic's); `data` is base64; `id` is the device-queue item id
 * ChirpStack reports back as `queueItemId` on its txack and ack events — the job id, so an outcome finds its job.
 */
export interface CommandDown {
  applicationId: string;
  devEui: string;
  queueItemId: string;
  confirmed: boolean;
  fPort: number;
  payloadHex: string;
}

export interface MqttMessage {
  topic: string;
  body: Buffer;
}

export function commandDownTopic(applicationId: string, devEui: string): string {
  return `application/${applicationId}/device/${devEui.toLowerCase()}/command/down`;
}

export function commandDownMessage(c: CommandDown): MqttMessage {
  return {
    topic: commandDownTopic(c.applicationId, c.devEui),
    body: Buffer.from(
      JSON.stringify({
        id: c.queueItemId,
        devEui: c.devEui.toLowerCase(),
        confirmed: c.confirmed,
        fPort: c.fPort,
        data: Buffer.from(c.payloadHex, 'hex').toString('base64'),
      }),
    ),
  };
}
