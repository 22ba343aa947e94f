import { describe, expect, it } from 'vitest';
import { commandDownMessage } from './chirpstack-command.js';

describe('commandDownMessage', () => {
  const cases = [
    {
      name: 'Busylight steady green, unconfirmed: fPort 15, base64 of the five bytes, lower-case DevEUI',
      input: {
        applicationId: 'app-1',
        devEui: '70B3D5FFFE000001',
        queueItemId: '0f8fad5b-d9cb-469f-a165-70867728950e',
        confirmed: false,
        fPort: 15,
        payloadHex: '0000ff6400',
      },
      topic: 'application/app-1/device/70b3d5fffe000001/command/down',
      body: {
        id: '0f8fad5b-d9cb-469f-a165-70867728950e',
        devEui: '70b3d5fffe000001',
        confirmed: false,
        fPort: 15,
        data: Buffer.from([0, 0, 0xff, 0x64, 0]).toString('base64'),
      },
    },
    {
      name: 'Heltec occupied, confirmed',
      input: {
        applicationId: 'a',
        devEui: 'ABCDEF0123456789',
        queueItemId: 'q',
        confirmed: true,
        fPort: 1,
        payloadHex: '02',
      },
      topic: 'application/a/device/abcdef0123456789/command/down',
      body: { id: 'q', devEui: 'abcdef0123456789', confirmed: true, fPort: 1, data: 'Ag==' },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const message = commandDownMessage(c.input);
      expect(message.topic).toBe(c.topic);
      expect(JSON.parse(message.body.toString('utf8'))).toEqual(c.body);
    });
});
