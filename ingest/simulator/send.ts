/**
 * Sends simulated ChirpStack uplinks over MQTT, like a sensor reporting a state:
 *   npx tsx ingest/simulator/send.ts --dev-eui 70B3D57ED0050001 --occupied true [--readings 2] [--fcnt 7]
 * Two readings by default, a second apart, because the occupancy debounce confirms a change only when two
 * readings agree; `--readings 1` shows a single frame being held back.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { loadConfig } from '../../lib/config.js';
import { demoApplicationId } from '../../infra/demo/demo-data.js';
import { nextFCnt, publishUplink, tbms100Payload } from './chirpstack-sim.js';

const usage =
  'usage: send.ts --dev-eui <16 hex> --occupied true|false [--readings N (1-10)] [--fcnt N] [--application ID]';
const { values } = parseArgs({
  options: {
    'dev-eui': { type: 'string' },
    occupied: { type: 'string', default: 'true' },
    readings: { type: 'string', default: '2' },
    // The demo's application by default: the demo's bridge listens to it only.
    application: { type: 'string', default: demoApplicationId },
    fcnt: { type: 'string' },
  },
});
const devEui = values['dev-eui'];
const readings = Number(values.readings);
if (
  !devEui ||
  !/^[0-9a-fA-F]{16}$/.test(devEui) ||
  !Number.isInteger(readings) ||
  readings < 1 ||
  readings > 10
) {
  console.error(usage);
  process.exit(2);
}
const config = loadConfig();
const client = await mqtt.connectAsync(config.mqtt.url, { clientId: `sim-send-${process.pid}` });
const firstFCnt = values.fcnt ? Number(values.fcnt) : nextFCnt();
const start = Date.now() - (readings - 1) * 1_000;
for (let i = 0; i < readings; i++) {
  const event = await publishUplink(client, {
    applicationId: values.application,
    devEui,
    fCnt: firstFCnt + i,
    fPort: 102,
    payload: tbms100Payload(values.occupied === 'true'),
    time: new Date(start + i * 1_000),
  });
  console.log(
    `sent uplink ${String(event['deduplicationId'])} for ${devEui.toUpperCase()} (fCnt ${firstFCnt + i}, occupied ${values.occupied})`,
  );
}
await client.endAsync();
