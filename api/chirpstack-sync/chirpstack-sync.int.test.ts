import grpc from '@grpc/grpc-js';
import deviceGrpc from '@chirpstack/chirpstack-api/api/device_grpc_pb.js';
import type devicePb from '@chirpstack/chirpstack-api/api/device_pb.js';
import gatewayGrpc from '@chirpstack/chirpstack-api/api/gateway_grpc_pb.js';
import type gatewayPb from '@chirpstack/chirpstack-api/api/gateway_pb.js';
import type emptyPb from 'google-protobuf/google/protobuf/empty_pb.js';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadConfig } from '../../lib/config.js';
import { createPool, type Pool } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { createLogger } from '../../lib/logger.js';
import { createTestTenant, eventually, randomDevEui, type TestTenant } from '../../lib/testing/fixtures.js';
import { createChirpstackApi } from './chirpstack-client.js';
import { createSyncRepository } from './repository.js';
import { startSyncWorker, type SyncWorker } from './worker.js';

// google-protobuf lives under @chirpstack/chirpstack-api; the generated services answer with its Empty.
const { Empty } = createRequire(
  createRequire(import.meta.url).resolve('@chirpstack/chirpstack-api/package.json'),
)('google-protobuf/google/protobuf/empty_pb.js') as typeof emptyPb;

const token = 'test-chirpstack-token';

/** One call the fake ChirpStack received: service method, the entity as the client sent it, its bearer token. */
interface Received {
  method: string;
  id: string;
  name: string;
  authorization: string | undefined;
  /** The device or gateway sent; for a Delete, only its id. */
  entity: devicePb.Device.AsObject | gatewayPb.Gateway.AsObject | { devEui: string } | { gatewayId: string };
}

type AnyRequest =
  | devicePb.CreateDeviceRequest
  | devicePb.DeleteDeviceRequest
  | gatewayPb.CreateGatewayRequest
  | gatewayPb.DeleteGatewayRequest;

function entityOf(request: AnyRequest): Received['entity'] {
  if ('getDevice' in request) return request.getDevice()!.toObject();
  if ('getGateway' in request) return request.getGateway()!.toObject();
  if ('getDevEui' in request) return { devEui: request.getDevEui() };
  return { gatewayId: request.getGatewayId() };
}

/**
 * A ChirpStack test double: an in-process gRPC server implementing the official DeviceService and GatewayService
 * definitions from @chirpstack/chirpstack-api (ChirpStack itself does not run here). It records every call,
 * refuses a wrong token, and answers each call with the next scripted failure if any (else OK).
 */
class FakeChirpstack {
  readonly calls: Received[] = [];
  readonly failures: Array<{ code: grpc.status; details: string }> = [];
  /** Runs before a call is answered (a test's way to change the world while a call is in flight). */
  beforeAnswer: ((method: string) => Promise<void>) | undefined;
  private readonly server = new grpc.Server();
  port = 0;

  async start(): Promise<void> {
    const handler =
      (method: string) =>
      (
        call: grpc.ServerUnaryCall<AnyRequest, emptyPb.Empty>,
        callback: grpc.sendUnaryData<emptyPb.Empty>,
      ) => {
        const authorization = call.metadata.get('authorization')[0]?.toString();
        const entity = entityOf(call.request);
        const id = 'devEui' in entity ? entity.devEui : entity.gatewayId;
        const name = 'name' in entity ? entity.name : '';
        this.calls.push({ method, id, name, authorization, entity });
        if (authorization !== `Bearer ${token}`)
          return callback({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
        const failure = this.failures.shift();
        if (failure) return callback(failure);
        const before = this.beforeAnswer?.(method) ?? Promise.resolve();
        before.then(
          () => callback(null, new Empty()),
          (error: unknown) => callback({ code: grpc.status.INTERNAL, details: String(error) }),
        );
      };
    this.server.addService(deviceGrpc.DeviceServiceService, {
      create: handler('DeviceService.Create'),
      update: handler('DeviceService.Update'),
      delete: handler('DeviceService.Delete'),
    } as grpc.UntypedServiceImplementation);
    this.server.addService(gatewayGrpc.GatewayServiceService, {
      create: handler('GatewayService.Create'),
      update: handler('GatewayService.Update'),
      delete: handler('GatewayService.Delete'),
    } as grpc.UntypedServiceImplementation);
    this.port = await new Promise((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
  }

  callsFor(id: string): Received[] {
    return this.calls.filter((c) => c.id === id.toLowerCase());
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

interface ItemRow {
  status: string;
  version: string;
  synced_version: string;
  in_chirpstack: boolean;
  attempts: number;
  last_error_code: string | null;
  last_error: string | null;
}

describe('ChirpStack sync', () => {
  const config = loadConfig();
  const fake = new FakeChirpstack();
  let admin: pg.Client;
  let pipeline: Pool;
  let apiPool: Pool;
  let tenant: TestTenant;
  let worker: SyncWorker | undefined;
  const deviceProfileId = randomUUID();
  const chirpstackTenantId = randomUUID();

  const item = async (kind: 'device' | 'gateway', eui: string): Promise<ItemRow | undefined> =>
    (
      await admin.query<ItemRow>(
        `SELECT status, version, synced_version, in_chirpstack, attempts, last_error_code, last_error
           FROM chirpstack_sync_items WHERE tenant_id = $1 AND kind = $2 AND eui = $3`,
        [tenant.tenantId, kind, eui],
      )
    ).rows[0];

  beforeAll(async () => {
    await fake.start();
    admin = new pg.Client({ connectionString: config.postgres.migrateUrl });
    await admin.connect();
    pipeline = createPool(config.postgres.pipelineUrl, 'chirpstack-sync-test', 2);
    apiPool = createPool(config.postgres.apiUrl, 'chirpstack-sync-test-api', 2);
  });

  beforeEach(async () => {
    fake.calls.length = 0;
    fake.failures.length = 0;
    fake.beforeAnswer = undefined;
    // A fresh tenant per test; its sensor (made by the fixture) is marked pending by the trigger.
    tenant = await createTestTenant(config.postgres.migrateUrl);
    await admin.query(
      `INSERT INTO chirpstack_applications (tenant_id, application_id, chirpstack_tenant_id, name, device_profile_id)
       VALUES ($1, $2, $3, 'parking', $4)`,
      [tenant.tenantId, randomUUID(), chirpstackTenantId, deviceProfileId],
    );
  });

  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });

  /** The worker under test, for this test's tenant only (other tests' devices are never sent). */
  const startWorker = () => {
    worker = startSyncWorker({
      repository: createSyncRepository(pipeline),
      chirpstack: createChirpstackApi({
        url: `127.0.0.1:${fake.port}`,
        token,
        tls: false,
        callTimeoutMs: 2_000,
      }),
      options: {
        tickMs: 20,
        batchSize: 10,
        callTimeoutMs: 2_000,
        maxAttempts: 5,
        baseBackoffMs: 50,
        maxBackoffMs: 200,
      },
      logger: createLogger('chirpstack-sync-test', 'silent'),
      tenantId: tenant.tenantId,
    });
  };

  afterAll(async () => {
    await pipeline.end();
    await apiPool.end();
    await admin.end();
    await fake.stop();
  });

  it('creates a new device and a new gateway in ChirpStack and marks both synced', async () => {
    const gwEui = randomDevEui();
    await admin.query(
      `INSERT INTO gateways (tenant_id, gw_eui, name, latitude, longitude) VALUES ($1, $2, 'Roof', 52.5, 13.4)`,
      [tenant.tenantId, gwEui],
    );
    startWorker();
    const device = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    expect(device).toMatchObject({ in_chirpstack: true, synced_version: device!.version, attempts: 0 });
    const gateway = await eventually(
      () => item('gateway', gwEui),
      (r) => r?.status === 'synced',
    );
    expect(gateway?.in_chirpstack).toBe(true);

    const [created] = fake.callsFor(tenant.devEui);
    expect(created).toMatchObject({ method: 'DeviceService.Create', authorization: `Bearer ${token}` });
    expect(created!.entity).toMatchObject({
      devEui: tenant.devEui.toLowerCase(),
      deviceProfileId,
      isDisabled: false,
    });
    expect((created!.entity as devicePb.Device.AsObject).tagsMap).toContainEqual([
      'parking_tenant_id',
      tenant.tenantId,
    ]);
    const [gatewayCall] = fake.callsFor(gwEui);
    expect(gatewayCall).toMatchObject({ method: 'GatewayService.Create', name: 'Roof' });
    expect(gatewayCall!.entity).toMatchObject({
      tenantId: chirpstackTenantId,
      location: { latitude: 52.5, longitude: 13.4 },
    });
  });

  it('records a failing call on the entity and retries it with backoff until ChirpStack accepts it', async () => {
    fake.failures.push(
      { code: grpc.status.UNAVAILABLE, details: 'chirpstack is restarting' },
      { code: grpc.status.UNAVAILABLE, details: 'chirpstack is restarting' },
    );
    startWorker();
    const failed = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'retrying',
      { intervalMs: 5 },
    );
    expect(failed).toMatchObject({
      last_error_code: 'UNAVAILABLE',
      last_error: 'chirpstack is restarting',
      in_chirpstack: false,
    });
    const synced = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    expect(synced).toMatchObject({ attempts: 0, last_error_code: null, in_chirpstack: true });
    expect(fake.callsFor(tenant.devEui).map((c) => c.method)).toEqual([
      'DeviceService.Create',
      'DeviceService.Create',
      'DeviceService.Create',
    ]);
  });

  it('stops retrying after a non-retriable answer and keeps the error visible', async () => {
    fake.failures.push({ code: grpc.status.INVALID_ARGUMENT, details: 'device-profile not found' });
    startWorker();
    const failed = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'failed',
    );
    expect(failed).toMatchObject({ last_error_code: 'INVALID_ARGUMENT', attempts: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.callsFor(tenant.devEui)).toHaveLength(1);
  });

  it('re-syncs a device that changes after it was synced, as an Update of the new version', async () => {
    startWorker();
    await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    // Telemetry (last_seen_at) does not mark the device; its name does.
    await admin.query(
      'UPDATE sensor_devices SET last_seen_at = now() WHERE tenant_id = $1 AND dev_eui = $2',
      [tenant.tenantId, tenant.devEui],
    );
    expect((await item('device', tenant.devEui))?.version).toBe('1');
    await admin.query(
      `UPDATE sensor_devices SET name = 'Bay 7 sensor', status = 'inactive' WHERE tenant_id = $1 AND dev_eui = $2`,
      [tenant.tenantId, tenant.devEui],
    );
    const resynced = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced' && r.synced_version === '2',
    );
    expect(resynced?.version).toBe('2');
    const calls = fake.callsFor(tenant.devEui);
    expect(calls.map((c) => c.method)).toEqual(['DeviceService.Create', 'DeviceService.Update']);
    expect(calls[1]!.entity).toMatchObject({ name: 'Bay 7 sensor', isDisabled: true });
  });

  it('deletes a device deleted in the platform from ChirpStack and records it synced, no longer there', async () => {
    startWorker();
    await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    // As the API deletes: parking_api under the tenant's RLS (the trigger marks the row as that role).
    await withTenant(apiPool, tenant.tenantId, (db) =>
      db.query('DELETE FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2', [
        tenant.tenantId,
        tenant.devEui,
      ]),
    );
    const deleted = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced' && r.synced_version === '2',
    );
    expect(deleted).toMatchObject({ version: '2', in_chirpstack: false, attempts: 0, last_error_code: null });
    const calls = fake.callsFor(tenant.devEui);
    expect(calls.map((c) => c.method)).toEqual(['DeviceService.Create', 'DeviceService.Delete']);
    expect(calls[1]).toMatchObject({
      authorization: `Bearer ${token}`,
      entity: { devEui: tenant.devEui.toLowerCase() },
    });
  });

  it('retries a gateway delete that fails with backoff, error visible, until ChirpStack deletes it', async () => {
    const gwEui = randomDevEui();
    await admin.query(`INSERT INTO gateways (tenant_id, gw_eui, name) VALUES ($1, $2, 'Roof')`, [
      tenant.tenantId,
      gwEui,
    ]);
    startWorker();
    await eventually(
      () => item('gateway', gwEui),
      (r) => r?.status === 'synced',
    );
    fake.failures.push({ code: grpc.status.UNAVAILABLE, details: 'chirpstack is restarting' });
    await admin.query('DELETE FROM gateways WHERE tenant_id = $1 AND gw_eui = $2', [tenant.tenantId, gwEui]);
    const failed = await eventually(
      () => item('gateway', gwEui),
      (r) => r?.status === 'retrying',
      { intervalMs: 5 },
    );
    expect(failed).toMatchObject({ last_error_code: 'UNAVAILABLE', attempts: 1, in_chirpstack: true });
    const deleted = await eventually(
      () => item('gateway', gwEui),
      (r) => r?.status === 'synced' && r.synced_version === '2',
    );
    expect(deleted).toMatchObject({ in_chirpstack: false, attempts: 0, last_error_code: null });
    expect(fake.callsFor(gwEui).map((c) => c.method)).toEqual([
      'GatewayService.Create',
      'GatewayService.Delete',
      'GatewayService.Delete',
    ]);
  });

  it('never deletes from ChirpStack what another tenant has registered with the same EUI since', async () => {
    const other = await createTestTenant(config.postgres.migrateUrl);
    const otherItem = async () =>
      (
        await admin.query<ItemRow>(
          `SELECT status, version, synced_version, in_chirpstack, attempts, last_error_code, last_error
             FROM chirpstack_sync_items WHERE tenant_id = $1 AND kind = 'device' AND eui = $2`,
          [other.tenantId, tenant.devEui],
        )
      ).rows[0];
    // Registered in the wrong tenant, deleted, registered in the right one before this tenant's delete is sent.
    await admin.query('DELETE FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2', [
      tenant.tenantId,
      tenant.devEui,
    ]);
    await admin.query(
      `INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'browan-tbms100')`,
      [other.tenantId, tenant.devEui],
    );
    startWorker();
    const skipped = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    expect(skipped).toMatchObject({ in_chirpstack: false, attempts: 0, last_error_code: null });
    expect(fake.callsFor(tenant.devEui)).toEqual([]);
    expect(await otherItem()).toMatchObject({ status: 'pending', version: '1' });
  });

  it('sends the create of another tenant again when a delete raced with its registration', async () => {
    const other = await createTestTenant(config.postgres.migrateUrl);
    startWorker();
    await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    // While this tenant's Delete is in flight, the other tenant registers the EUI (and its create went through).
    fake.beforeAnswer = async (method) => {
      if (method !== 'DeviceService.Delete') return;
      await admin.query(
        `INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'browan-tbms100')`,
        [other.tenantId, tenant.devEui],
      );
      await admin.query(
        `UPDATE chirpstack_sync_items SET status = 'synced', synced_version = version, in_chirpstack = true
          WHERE tenant_id = $1 AND kind = 'device' AND eui = $2`,
        [other.tenantId, tenant.devEui],
      );
    };
    await admin.query('DELETE FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2', [
      tenant.tenantId,
      tenant.devEui,
    ]);
    await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced' && r.synced_version === '2',
    );
    // The Delete removed what the other tenant had made: its row is due as a create again, at a new version.
    const again = (
      await admin.query<ItemRow>(
        `SELECT status, version, synced_version, in_chirpstack, attempts, last_error_code, last_error
           FROM chirpstack_sync_items WHERE tenant_id = $1 AND kind = 'device' AND eui = $2`,
        [other.tenantId, tenant.devEui],
      )
    ).rows[0];
    expect(again).toMatchObject({
      status: 'pending',
      version: '2',
      synced_version: '1',
      in_chirpstack: false,
    });
    expect(fake.callsFor(tenant.devEui).map((c) => c.method)).toEqual([
      'DeviceService.Create',
      'DeviceService.Delete',
    ]);
  });

  it('counts a delete ChirpStack answers NOT_FOUND as done, and creates the device anew if registered again', async () => {
    await admin.query('DELETE FROM sensor_devices WHERE tenant_id = $1 AND dev_eui = $2', [
      tenant.tenantId,
      tenant.devEui,
    ]);
    fake.failures.push({ code: grpc.status.NOT_FOUND, details: 'object does not exist' });
    startWorker();
    const deleted = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced',
    );
    expect(deleted).toMatchObject({ version: '2', synced_version: '2', in_chirpstack: false });
    await admin.query(
      `INSERT INTO sensor_devices (tenant_id, dev_eui, codec) VALUES ($1, $2, 'browan-tbms100')`,
      [tenant.tenantId, tenant.devEui],
    );
    await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'synced' && r.synced_version === '3',
    );
    expect(fake.callsFor(tenant.devEui).map((c) => c.method)).toEqual([
      'DeviceService.Delete',
      'DeviceService.Create',
    ]);
  });

  it('records a device it cannot map (no device profile) as failed, without calling ChirpStack', async () => {
    await admin.query('UPDATE chirpstack_applications SET device_profile_id = NULL WHERE tenant_id = $1', [
      tenant.tenantId,
    ]);
    startWorker();
    const failed = await eventually(
      () => item('device', tenant.devEui),
      (r) => r?.status === 'failed',
    );
    expect(failed?.last_error_code).toBe('NOT_MAPPED');
    expect(fake.callsFor(tenant.devEui)).toHaveLength(0);
  });
});
