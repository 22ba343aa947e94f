/**
 * The ingest benchmark's load generator, run as its own process (`fork` from ingest-throughput.ts) so the
 * bridge's process spends its CPU on the bridge only. It speaks to its parent over the IPC channel:
 *
 *   parent -> { type: 'prepare', ... }   build every topic and body, connect the MQTT publisher; -> 'ready'
 *   parent -> { type: 'run', phase }     send them all ('mqtt': QoS 1, up to `mqttWindow` PUBLISHes awaiting
 *                                        their PUBACK; 'http': `httpClients` keep-alive node:http clients);
 *                                        -> { type: 'done', phase, failed }; with `warmup: true`, the
 *                                        separate warm-up set (other frame counters) instead
 *   parent -> { type: 'exit' }           disconnect and exit.
 *
 * Bodies are built before the parent starts its clock, so only sending them is in the measured time.
 */
import { Agent, request } from 'node:http';
import mqtt from 'mqtt';
import { eventTopic } from '../ingest/chirpstack/mqtt-topic.js';
import type { EventEncoding } from '../ingest/chirpstack/event-types.js';
import {
  defaultApplicationId,
  encodeEvent,
  tbms100Payload,
  uplinkEvent,
} from '../ingest/simulator/chirpstack-sim.js';

export interface PrepareMessage {
  type: 'prepare';
  mqttUrl: string;
  clientId: string;
  /** `http://host:port/chirpstack/events?event=up` */
  httpUrl: string;
  count: number;
  devEuis: string[];
  encoding: EventEncoding;
  mqttWindow: number;
  httpClients: number;
  /** Uplinks per source sent untimed before the measured ones (`run` with `warmup: true`). */
  warmup: number;
}

export type GeneratorCommand =
  PrepareMessage | { type: 'run'; phase: Phase; warmup?: boolean } | { type: 'exit' };
export type Phase = 'mqtt' | 'http';
export type GeneratorReply = { type: 'ready' } | { type: 'done'; phase: Phase; failed: number };

interface Prepared {
  options: PrepareMessage;
  publisher: mqtt.MqttClient;
  mqtt: MqttMessage[];
  http: Buffer[];
  /** `warmup` uplinks per source, sent untimed first so the bridge runs compiled code when the clock starts. */
  warm: { mqtt: MqttMessage[]; http: Buffer[] };
}

interface MqttMessage {
  topic: string;
  body: Buffer;
}

/** Uplink `i` of the run: devices in turn, each with rising frame counters (HTTP ones offset, never duplicates). */
function build(options: PrepareMessage, i: number, fCntOffset: number): Buffer {
  const { count, devEuis } = options;
  const event = uplinkEvent({
    devEui: devEuis[i % devEuis.length]!,
    fCnt: Math.floor(i / devEuis.length) + 1 + fCntOffset,
    fPort: 102,
    payload: tbms100Payload(i % 2 === 0),
    time: new Date(Date.now() - count + i),
  });
  return encodeEvent('up', event, options.encoding);
}

async function prepare(options: PrepareMessage): Promise<Prepared> {
  const publisher = await mqtt.connectAsync(options.mqttUrl, { clientId: options.clientId });
  const mqttMessages = (n: number, fCntOffset: number) =>
    Array.from({ length: n }, (_, i) => ({
      topic: eventTopic(
        defaultApplicationId,
        options.devEuis[i % options.devEuis.length]!.toLowerCase(),
        'up',
      ),
      body: build(options, i, fCntOffset),
    }));
  const httpBodies = (n: number, fCntOffset: number) =>
    Array.from({ length: n }, (_, i) => build(options, i, fCntOffset));
  return {
    options,
    publisher,
    mqtt: mqttMessages(options.count, 0),
    http: httpBodies(options.count, 1_000_000),
    warm: { mqtt: mqttMessages(options.warmup, 2_000_000), http: httpBodies(options.warmup, 3_000_000) },
  };
}

async function runMqtt({ publisher, options }: Prepared, messages: MqttMessage[]): Promise<number> {
  const inFlight = new Set<Promise<unknown>>();
  let failed = 0;
  for (const { topic, body } of messages) {
    const p = publisher
      .publishAsync(topic, body, { qos: 1 })
      .catch(() => void failed++)
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= options.mqttWindow) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return failed;
}

/** One POST; resolves with the status once the whole answer was read. */
function post(url: URL, agent: Agent, body: Buffer, contentType: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': contentType, 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runHttp({ options }: Prepared, bodies: Buffer[]): Promise<number> {
  const url = new URL(options.httpUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: options.httpClients });
  const contentType = options.encoding === 'json' ? 'application/json' : 'application/protobuf';
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: options.httpClients }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const status = await post(url, agent, body, contentType).catch(() => 0);
        if (status !== 200) failed++;
      }
    }),
  );
  agent.destroy();
  return failed;
}

function reply(message: GeneratorReply): void {
  process.send?.(message);
}

let prepared: Prepared | undefined;
process.on('message', (command: GeneratorCommand) => {
  void (async () => {
    switch (command.type) {
      case 'prepare':
        prepared = await prepare(command);
        return reply({ type: 'ready' });
      case 'run': {
        if (!prepared) throw new Error('run before prepare');
        const { mqtt: mqttMessages, http: httpBodies } = command.warmup ? prepared.warm : prepared;
        const failed =
          command.phase === 'mqtt'
            ? await runMqtt(prepared, mqttMessages)
            : await runHttp(prepared, httpBodies);
        return reply({ type: 'done', phase: command.phase, failed });
      }
      case 'exit':
        await prepared?.publisher.endAsync();
        process.exit(0);
    }
  })().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
