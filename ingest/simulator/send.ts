/**
 * Sends one simulated ChirpStack uplink over MQTT:
 *   npx tsx ingest/simulator/send.ts --dev-eui 70B3D57ED0050001 --occupied true [--fcnt 7]
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { loadConfig } from '../../lib/config.js';
import { publishUplink, tbms100Payload } from './chirpstack-sim.js';

const { values } = parseArgs({
  options: {
    'dev-eui': { type: 'string' },
    occupied: { type: 'string', default: 'true' },
    fcnt: { type: 'string' },
  },
});
const devEui = values['dev-eui'];
if (!devEui || !/^[0-9a-fA-F]{16}$/.test(devEui)) {
  console.error('usage: send.ts --dev-eui <16 hex> --occupied true|false [--fcnt N]');
  process.exit(2);
}
const config = loadConfig();
const client = await mqtt.connectAsync(config.mqtt.url, { clientId: `sim-send-${process.pid}` });
const fCnt = values.fcnt ? Number(values.fcnt) : Math.floor(Date.now() / 1000) % 1_000_000;
const event = await publishUplink(client, {
  devEui,
  fCnt,
  fPort: 102,
  payload: tbms100Payload(values.occupied === 'true'),
});
await client.endAsync();
console.log(
  `sent uplink ${String(event['deduplicationId'])} for ${devEui.toUpperCase()} (fCnt ${fCnt}, occupied ${values.occupied})`,
);
