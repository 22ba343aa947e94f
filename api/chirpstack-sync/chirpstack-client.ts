import grpc from '@grpc/grpc-js';
import commonPb from '@chirpstack/chirpstack-api/common/common_pb.js';
import deviceGrpc from '@chirpstack/chirpstack-api/api/device_grpc_pb.js';
import devicePb from '@chirpstack/chirpstack-api/api/device_pb.js';
import gatewayGrpc from '@chirpstack/chirpstack-api/api/gateway_grpc_pb.js';
import gatewayPb from '@chirpstack/chirpstack-api/api/gateway_pb.js';
import type { CallResult, DeviceSpec, GatewaySpec, Plan } from './decide.js';

/** The six ChirpStack calls the sync makes (create, update, delete of devices and gateways); each resolves with a
 * CallResult and never throws. */
export interface ChirpstackApi {
  send(plan: Exclude<Plan, { call: 'none' | 'skip' }>): Promise<CallResult>;
  close(): void;
}

export interface ChirpstackApiOptions {
  /** host:port of ChirpStack's gRPC API. */
  url: string;
  /** An API token made in ChirpStack (sent as `authorization: Bearer <token>`). */
  token: string;
  tls: boolean;
  callTimeoutMs: number;
}

type Unary<Req> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null) => void,
) => grpc.ClientUnaryCall;

/** ChirpStack's official DeviceService and GatewayService clients (@chirpstack/chirpstack-api) over one channel. */
export function createChirpstackApi(options: ChirpstackApiOptions): ChirpstackApi {
  const credentials = options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  const devices = new deviceGrpc.DeviceServiceClient(options.url, credentials);
  const gateways = new gatewayGrpc.GatewayServiceClient(options.url, credentials, {
    channelOverride: devices.getChannel(),
  });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${options.token}`);

  const call = <Req>(method: Unary<Req>, request: Req): Promise<CallResult> =>
    new Promise((resolve) => {
      method(request, metadata, { deadline: Date.now() + options.callTimeoutMs }, (error) => {
        if (!error) return resolve({ ok: true });
        resolve({ ok: false, code: grpc.status[error.code] ?? String(error.code), message: error.details });
      });
    });

  return {
    send(plan) {
      switch (plan.call) {
        case 'createDevice': {
          const request = new devicePb.CreateDeviceRequest();
          request.setDevice(toDevice(plan.device));
          return call(devices.create.bind(devices), request);
        }
        case 'updateDevice': {
          const request = new devicePb.UpdateDeviceRequest();
          request.setDevice(toDevice(plan.device));
          return call(devices.update.bind(devices), request);
        }
        case 'createGateway': {
          const request = new gatewayPb.CreateGatewayRequest();
          request.setGateway(toGateway(plan.gateway));
          return call(gateways.create.bind(gateways), request);
        }
        case 'updateGateway': {
          const request = new gatewayPb.UpdateGatewayRequest();
          request.setGateway(toGateway(plan.gateway));
          return call(gateways.update.bind(gateways), request);
        }
        case 'deleteDevice': {
          const request = new devicePb.DeleteDeviceRequest();
          request.setDevEui(plan.devEui);
          return call(devices.delete.bind(devices), request);
        }
        case 'deleteGateway': {
          const request = new gatewayPb.DeleteGatewayRequest();
          request.setGatewayId(plan.gatewayId);
          return call(gateways.delete.bind(gateways), request);
        }
      }
    },
    close() {
      devices.close();
      gateways.close();
    },
  };
}

function toDevice(spec: DeviceSpec): devicePb.Device {
  const device = new devicePb.Device();
  device.setDevEui(spec.devEui);
  device.setName(spec.name);
  device.setDescription(spec.description);
  device.setApplicationId(spec.applicationId);
  device.setDeviceProfileId(spec.deviceProfileId);
  device.setIsDisabled(spec.isDisabled);
  for (const [key, value] of Object.entries(spec.tags)) device.getTagsMap().set(key, value);
  return device;
}

function toGateway(spec: GatewaySpec): gatewayPb.Gateway {
  const gateway = new gatewayPb.Gateway();
  gateway.setGatewayId(spec.gatewayId);
  gateway.setName(spec.name);
  gateway.setDescription(spec.description);
  gateway.setTenantId(spec.tenantId);
  // ChirpStack's default: the gateway reports its stats every 30 s.
  gateway.setStatsInterval(30);
  if (spec.location) {
    const location = new commonPb.Location();
    location.setLatitude(spec.location.latitude);
    location.setLongitude(spec.location.longitude);
    gateway.setLocation(location);
  }
  for (const [key, value] of Object.entries(spec.tags)) gateway.getTagsMap().set(key, value);
  return gateway;
}
