// The registry served in-process on an ephemeral port, driven by the real @kafkajs/confluent-schema-registry client:
// proves the Confluent REST surface and wire format (magic byte 0, 4-byte big-endian id, Avro body).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonLinesLog, Registry } from './registry.js';
import { contentType, startServer } from './server.js';
import type { RunningServer } from './server.js';

const occupancyV1 = {
  type: 'record',
  name: 'OccupancyChanged',
  namespace: 'parking.events',
  fields: [
    { name: 'tenantId', type: 'string' },
    { name: 'devEui', type: 'string' },
    { name: 'occupied', type: 'boolean' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
};
const occupancyWithRequiredField = {
  ...occupancyV1,
  fields: [...occupancyV1.fields, { name: 'bayId', type: 'string' }],
};

describe('schema registry over HTTP', () => {
  let dir: string;
  let dataFile: string;
  let server: RunningServer | undefined;

  async function start(): Promise<RunningServer> {
    const registry = Registry.open(new JsonLinesLog(dataFile));
    server = await startServer({ registry, logger: pino({ level: 'silent' }), host: '127.0.0.1', port: 0 });
    return server;
  }

  /** A client with an empty cache, so every answer comes from the server. */
  const freshClient = (url: string): SchemaRegistry => new SchemaRegistry({ host: url }, undefined);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'schema-registry-int-'));
    dataFile = join(dir, 'schemas.jsonl');
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a message encoded by one client is decoded by another, in Confluent wire format', async () => {
    const { url } = await start();
    const subject = `occupancy-${randomUUID()}-value`;
    const { id } = await freshClient(url).register(
      { type: SchemaType.AVRO, schema: JSON.stringify(occupancyV1) },
      { subject },
    );
    const message = { tenantId: 't1', devEui: '0011223344556677', occupied: true, at: 1_700_000_000_000 };

    const encoded = await freshClient(url).encode(id, message);
    const decoded: unknown = await freshClient(url).decode(encoded);

    expect(encoded[0]).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id);
    expect(decoded).toEqual(message);
    expect(await freshClient(url).getLatestSchemaId(subject)).toBe(id);
  });

  it('an incompatible schema is refused with 409 and error_code 409', async () => {
    const { url } = await start();
    const subject = `occupancy-${randomUUID()}-value`;
    const client = freshClient(url);
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(occupancyV1) }, { subject });

    await expect(
      freshClient(url).register(
        { type: SchemaType.AVRO, schema: JSON.stringify(occupancyWithRequiredField) },
        { subject },
      ),
    ).rejects.toMatchObject({ status: 409 });

    const response = await fetch(`${url}/subjects/${subject}/versions`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: JSON.stringify({ schema: JSON.stringify(occupancyWithRequiredField) }),
    });
    expect(response.status).toBe(409);
    expect(response.headers.get('content-type')).toContain(contentType);
    expect(await response.json()).toMatchObject({ error_code: 409 });
  });

  it('ids still resolve after a restart on the same data file', async () => {
    const first = await start();
    const subject = `occupancy-${randomUUID()}-value`;
    const { id } = await freshClient(first.url).register(
      { type: SchemaType.AVRO, schema: JSON.stringify(occupancyV1) },
      { subject },
    );
    const encoded = await freshClient(first.url).encode(id, {
      tenantId: 't1',
      devEui: 'a',
      occupied: false,
      at: 0,
    });
    await first.stop();

    const second = await start();
    expect(await freshClient(second.url).decode(encoded)).toMatchObject({ devEui: 'a', occupied: false });
    const again = await freshClient(second.url).register(
      { type: SchemaType.AVRO, schema: JSON.stringify(occupancyV1) },
      { subject },
    );
    expect(again.id).toBe(id);
  });

  it('answers Confluent error shapes and codes for missing things', async () => {
    const { url } = await start();
    const cases: { path: string; status: number; errorCode: number }[] = [
      { path: '/subjects/nope/versions', status: 404, errorCode: 40401 },
      { path: '/schemas/ids/424242', status: 404, errorCode: 40403 },
      { path: '/subjects/nope/versions/abc', status: 422, errorCode: 42202 },
      { path: '/config/nope', status: 404, errorCode: 40408 },
    ];
    for (const { path, status, errorCode } of cases) {
      const response = await fetch(`${url}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status });
      expect(await response.json()).toMatchObject({ error_code: errorCode });
    }
    const badLevel = await fetch(`${url}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ compatibility: 'SIDEWAYS' }),
    });
    expect(badLevel.status).toBe(422);
    expect(await badLevel.json()).toMatchObject({ error_code: 42203 });
  });

  it('serves versions, raw schema text and compatibility checks', async () => {
    const { url } = await start();
    const subject = `occupancy-${randomUUID()}-value`;
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const { id } = (await (
      await post(`/subjects/${subject}/versions`, { schema: JSON.stringify(occupancyV1) })
    ).json()) as {
      id: number;
    };

    const latest = await (await fetch(`${url}/subjects/${subject}/versions/latest`)).json();
    expect(latest).toMatchObject({ subject, version: 1, id });
    const raw = await (await fetch(`${url}/subjects/${subject}/versions/1/schema`)).json();
    expect(raw).toEqual(occupancyV1);
    expect(await (await fetch(`${url}/schemas/ids/${id}/versions`)).json()).toEqual([
      { subject, version: 1 },
    ]);
    expect(await (await fetch(`${url}/subjects`)).json()).toEqual([subject]);
    const lookup = await post(`/subjects/${subject}`, { schema: JSON.stringify(occupancyV1) });
    expect(await lookup.json()).toMatchObject({ subject, id, version: 1 });

    const check = await post(`/compatibility/subjects/${subject}/versions/latest`, {
      schema: JSON.stringify(occupancyWithRequiredField),
    });
    expect(await check.json()).toEqual({ is_compatible: false });
    const json = await post(`/subjects/${subject}/versions`, { schema: '{}', schemaType: 'JSON' });
    expect(json.status).toBe(422);
    expect(await json.json()).toMatchObject({ error_code: 42201 });

    const deleted = await fetch(`${url}/subjects/${subject}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual([1]);
    expect((await fetch(`${url}/schemas/ids/${id}`)).status).toBe(200);
  });
});
