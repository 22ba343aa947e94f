import mqtt from 'mqtt';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { loadConfig } from '../lib/config.js';
import { createPool } from '../lib/db/pool.js';
import { createOperabilityApp } from '../lib/http/health.js';
import { closeServer, listen } from '../lib/http/listen.js';
import { createSchemaRegistry } from '../lib/kafka/avro.js';
import { createKafka } from '../lib/kafka/client.js';
import { runMain, stopAll } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { startDeviceStatus } from './device-status/run.js';
import { startDisplays } from './display/run.js';
import { startLiveness } from './liveness/run.js';
import { startOccupancy } from './occupancy/run.js';
import { startReservations } from './reservations/run.js';
import { startRollups } from './rollups/run.js';

// Composition root of the stream processors.
const config = loadConfig();
const logger = createLogger('processors', config.logLevel);
await runMain('processors', logger, config.shutdownGraceMs, async () => {
  const pipelinePool = createPool(config.postgres.pipelineUrl, 'parking-processors', config.postgres.poolMax);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const schemaRegistry = createSchemaRegistry(config.schemaRegistry);
  const occupancy = await startOccupancy({
    kafka: createKafka(config.kafka, logger, 'parking-processors'),
    registry: schemaRegistry,
    pipelinePool,
    topics: config.topics,
    groupId: config.occupancy.groupId,
    logger: logger.child({ processor: 'occupancy' }),
    metrics: registry,
    options: { drainMs: config.shutdownGraceMs },
  });
  // Downlinks leave through ChirpStack's MQTT integration (application/{id}/device/{devEui}/command/down).
  const downlinkMqtt = await mqtt.connectAsync(config.mqtt.url, {
    clientId: config.displays.mqttClientId,
    username: config.mqtt.username,
    password: config.mqtt.password,
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
  });
  const displays = await startDisplays({
    kafka: createKafka(config.kafka, logger, 'parking-displays'),
    registry: schemaRegistry,
    pipelinePool,
    mqtt: downlinkMqtt,
    topics: config.topics,
    groupIds: { changes: config.displays.groupId, outcomes: config.displays.outcomesGroupId },
    logger: logger.child({ processor: 'display' }),
    metrics: registry,
    tick: { everyMs: config.displays.tickMs, maxItems: config.displays.tickMaxItems },
    display: {
      confirmTimeoutMs: config.displays.confirmTimeoutMs,
      reservationLeadMs: config.displays.reservationLeadMs,
    },
    downlink: config.displays.downlink,
    options: { drainMs: config.shutdownGraceMs },
  });
  const rollups = await startRollups({
    kafka: createKafka(config.kafka, logger, 'parking-rollups'),
    registry: schemaRegistry,
    pipelinePool,
    topics: config.topics,
    groupIds: { changes: config.rollups.groupId, uplinks: config.rollups.healthGroupId },
    logger: logger.child({ processor: 'rollups' }),
    metrics: registry,
    tick: { everyMs: config.rollups.tickMs, maxItems: config.rollups.tickMaxItems },
    policy: { lateHorizonMs: config.rollups.lateHorizonMs },
    options: { drainMs: config.shutdownGraceMs },
  });
  const liveness = await startLiveness({
    kafka: createKafka(config.kafka, logger, 'parking-liveness'),
    registry: schemaRegistry,
    pipelinePool,
    topics: { ...config.topics, livenessAlerts: config.liveness.alertsTopic },
    groupId: config.liveness.groupId,
    logger: logger.child({ processor: 'liveness' }),
    metrics: registry,
    tick: { everyMs: config.liveness.tickMs, maxItems: config.liveness.tickMaxItems },
    deviceIntervalMs: config.liveness.deviceIntervalMs,
    gatewaySilentMinutes: config.liveness.gatewaySilentMinutes,
    raiseGate: config.liveness.raiseGate,
    options: { drainMs: config.shutdownGraceMs },
  });
  const deviceStatus = await startDeviceStatus({
    kafka: createKafka(config.kafka, logger, 'parking-device-status'),
    registry: schemaRegistry,
    pipelinePool,
    topics: config.topics,
    groupId: config.deviceStatus.groupId,
    logger: logger.child({ processor: 'device-status' }),
    metrics: registry,
    options: { drainMs: config.shutdownGraceMs },
  });
  const reservations = await startReservations({
    kafka: createKafka(config.kafka, logger, 'parking-reservations'),
    registry: schemaRegistry,
    pipelinePool,
    topics: { reservationEvents: config.reservations.eventsTopic },
    occupancy: { groupId: config.occupancy.groupId, topic: config.topics.uplinks },
    judgeGate: config.reservations.judgeGate,
    logger: logger.child({ processor: 'reservations' }),
    metrics: registry,
    tick: {
      everyMs: config.reservations.tickMs,
      batchSize: config.reservations.batchSize,
      maxBatches: config.reservations.maxBatches,
    },
    policy: { noShowGraceMs: config.reservations.noShowGraceMs },
  });
  let draining = false;
  const http = await listen(
    createOperabilityApp(registry, () => !draining),
    config.processors.host,
    config.processors.httpPort,
  );
  return {
    stop: async () => {
      draining = true;
      await stopAll([
        { stop: () => pipelinePool.end() },
        { stop: () => downlinkMqtt.endAsync() },
        occupancy,
        displays,
        rollups,
        liveness,
        deviceStatus,
        reservations,
        { stop: () => closeServer(http.server) },
      ]);
    },
  };
});
