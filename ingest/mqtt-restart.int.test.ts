import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../lib/testing/fixtures.js';
import { encodeEvent, tbms100Payload, uplinkEvent } from './simulator/chirpstack-sim.js';
import { startIngestHarness, type IngestHarness } from './testing/harness.js';

/**
 * Fault: the (shared, local) Mosquitto restarts while events flow. The broker is stopped by its pid file and
 * started again by its service script within a few seconds; the test always starts it again in `finally`.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
let h: IngestHarness;
let publisher: MqttClient;

beforeAll(async () => {
  h = await startIngestHarness('mqtt-restart-int');
  publisher = await mqtt.connectAsync(h.config.mqtt.url, {
    clientId: `mqtt-restart-pub-${h.run}`,
    reconnectPeriod: 200,
  });
});
afterAll(async () => {
  await publisher?.endAsync(true);
  await h?.stop();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopMosquitto(): Promise<void> {
  const pidFile = resolve(root, h.config.localStack.dataDir, 'run', 'mosquitto.pid');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  process.kill(pid, 'SIGTERM'); // a clean exit saves the persistent sessions and their queued messages
  await eventually(
    async () => alive(pid),
    (a) => !a,
    { timeoutMs: 10_000, intervalMs: 20 },
  );
}

describe('MQTT broker restart', () => {
  it('QoS 1 events published before, during and after a Mosquitto restart are each published exactly once', async () => {
    const events = Array.from({ length: 150 }, (_, i) =>
      uplinkEvent({
        devEui: h.tenant.devEui,
        applicationId: h.applicationId,
        fCnt: 10_000 + i,
        fPort: 102,
        payload: tbms100Payload(i % 2 === 0),
        deduplicationId: randomUUID(),
      }),
    );
    const topic = `application/${h.applicationId}/device/${h.tenant.devEui.toLowerCase()}/event/up`;
    const publish = (e: (typeof events)[number]) =>
      publisher.publishAsync(topic, encodeEvent('up', e, 'json'), { qos: 1 });
    const ids = events.map((e) => String(e['deduplicationId']));
    const before = await h.counts();

    // Before: acknowledged by the broker, many still in flight in the bridge when the broker goes away.
    await Promise.all(events.slice(0, 50).map(publish));
    let during: Array<Promise<unknown>> = [];
    try {
      await stopMosquitto();
      // During: queued by the publisher's client and sent when it reconnects.
      during = events.slice(50, 100).map(publish);
    } finally {
      await run('bash', [`${root}infra/services/mosquitto.sh`, 'up'], { cwd: root });
    }
    await Promise.all(during);
    await Promise.all(events.slice(100).map(publish));

    await eventually(
      async () => new Set(h.recordsOn(h.topics.uplinks, ids).map((r) => r.record['eventId'])).size,
      (n) => n === events.length,
      { timeoutMs: 45_000 },
    );
    await new Promise((r) => setTimeout(r, 1_000)); // a late redelivery would show as a second copy
    const records = h.recordsOn(h.topics.uplinks, ids);
    expect(records).toHaveLength(events.length);
    const after = await h.counts();
    const d = Object.fromEntries(
      Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]),
    );
    expect(d).toMatchObject({ published: events.length, deadLettered: 0 });
    expect(d['received']).toBe(d['published']! + d['deduplicated']! + d['notAcknowledged']!);
  });
});
