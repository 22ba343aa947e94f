import { z } from 'zod';
import { PlatformError } from './errors.js';

/**
 * The only module that reads process.env. Every service calls loadConfig() once in its main.ts and passes the
 * frozen result (or narrow parts of it) down. Defaults point at the local stack started by infra/stack.sh, built
 * from the same port variables as infra/env.sh (so moving a port moves it for both); in production the URLs come
 * from the environment (see README, "Running against real services").
 */
const port = z.coerce.number().int().min(1).max(65535);
const bool = z
  .enum(['true', 'false', '1', '0', ''])
  .default('false')
  .transform((v) => v === 'true' || v === '1');

/** Development passwords of the local stack's login roles; never used when the URLs are given. */
export const localPasswords = { api: 'parking-api-dev', pipeline: 'parking-pipeline-dev' } as const;

/** Development key that signs access tokens on the local stack; production sets API_JWT_SECRET. */
export const localJwtSecret = 'parking-api-local-development-jwt-secret';

const envSchema = z.object({
  // The local stack's data folder (infra/env.sh): tests that restart a local service find its pid file there.
  PARKING_DATA_DIR: z.string().min(1).default('.data'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  PG_HOST: z.string().default('127.0.0.1'),
  PG_PORT: port.default(25432),
  PG_DATABASE: z.string().default('parking'),
  PG_SUPERUSER_PASSWORD: z.string().default('postgres-dev'),
  PG_MIGRATE_URL: z.string().optional(),
  PG_API_URL: z.string().optional(),
  PG_PIPELINE_URL: z.string().optional(),
  PG_API_PASSWORD: z.string().optional(),
  PG_PIPELINE_PASSWORD: z.string().optional(),
  PG_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  KAFKA_PORT: port.default(29092),
  KAFKA_BROKERS: z.string().optional(),
  KAFKA_CLIENT_ID: z.string().default('parking-platform'),
  KAFKA_SSL: bool,
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  KAFKA_CONTROL_PORT: port.default(29093),
  SCHEMA_REGISTRY_PORT: port.default(28081),
  SCHEMA_REGISTRY_URL: z.string().url().optional(),
  SCHEMA_REGISTRY_USERNAME: z.string().optional(),
  SCHEMA_REGISTRY_PASSWORD: z.string().optional(),
  MQTT_PORT: port.default(21883),
  MQTT_URL: z.string().optional(),
  MQTT_USERNAME: z.string().optional(),
  MQTT_PASSWORD: z.string().optional(),
  MQTT_CLIENT_ID: z.string().default('parking-ingest'),
  MQTT_EVENT_TOPIC: z.string().default('application/+/device/+/event/+'),
  REDIS_PORT: port.default(26379),
  REDIS_URL: z.string().optional(),
  API_PORT: port.default(28080),
  BIND_HOST: z.string().default('127.0.0.1'),
  INGEST_HTTP_PORT: port.default(28090),
  PROCESSORS_HTTP_PORT: port.default(28091),
  TOPIC_UPLINKS: z.string().default('parking.uplinks.v1'),
  TOPIC_DEAD_LETTER: z.string().default('parking.dead-letter.v1'),
  TOPIC_JOINS: z.string().default('parking.joins.v1'),
  TOPIC_DEVICE_STATUS: z.string().default('parking.device-status.v1'),
  TOPIC_DEVICE_LOCATIONS: z.string().default('parking.device-locations.v1'),
  TOPIC_DOWNLINK_OUTCOMES: z.string().default('parking.downlink-outcomes.v1'),
  TOPIC_ORPHAN_UPLINKS: z.string().default('parking.orphan-uplinks.v1'),
  TOPIC_OCCUPANCY_CHANGES: z.string().default('parking.occupancy-changes.v1'),
  TOPIC_LIVENESS_ALERTS: z.string().default('parking.liveness-alerts.v1'),
  INGEST_BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).default(65_536),
  INGEST_HTTP_TIMEOUT_MS: z.coerce.number().int().min(100).max(4_900).default(4_000),
  INGEST_MQTT_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(65_535).default(256),
  INGEST_BATCH_MAX_RECORDS: z.coerce.number().int().min(1).default(500),
  INGEST_BATCH_LINGER_MS: z.coerce.number().int().min(0).default(5),
  INGEST_QUEUE_MAX_RECORDS: z.coerce.number().int().min(1).default(10_000),
  INGEST_DEDUP_TTL_S: z.coerce.number().int().min(1).default(600),
  INGEST_DEDUP_MAX_ENTRIES: z.coerce.number().int().min(1).default(200_000),
  INGEST_DEDUP_REDIS: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  CHIRPSTACK_KAFKA_TOPIC: z.string().default(''),
  CHIRPSTACK_KAFKA_GROUP_ID: z.string().default('parking-ingest-chirpstack'),
  CHIRPSTACK_API_URL: z.string().default(''),
  CHIRPSTACK_API_TOKEN: z.string().default(''),
  CHIRPSTACK_API_TLS: bool,
  CHIRPSTACK_SYNC_TICK_MS: z.coerce.number().int().min(10).default(2_000),
  CHIRPSTACK_SYNC_BATCH: z.coerce.number().int().min(1).max(1_000).default(50),
  CHIRPSTACK_SYNC_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  CHIRPSTACK_SYNC_BASE_BACKOFF_MS: z.coerce.number().int().min(10).default(5_000),
  CHIRPSTACK_SYNC_MAX_BACKOFF_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(30 * 60_000),
  CHIRPSTACK_SYNC_CALL_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  OCCUPANCY_GROUP_ID: z.string().default('parking-occupancy'),
  DISPLAY_GROUP_ID: z.string().default('parking-display'),
  DOWNLINK_OUTCOMES_GROUP_ID: z.string().default('parking-downlink-outcomes'),
  DISPLAY_TICK_MS: z.coerce.number().int().min(10).default(1_000),
  DISPLAY_TICK_MAX_ITEMS: z.coerce.number().int().min(1).max(10_000).default(200),
  DISPLAY_CONFIRM_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(5 * 60_000),
  DISPLAY_RESERVATION_LEAD_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(15 * 60_000),
  DOWNLINK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  DOWNLINK_BASE_BACKOFF_MS: z.coerce.number().int().min(10).default(30_000),
  DOWNLINK_MAX_BACKOFF_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(15 * 60_000),
  DOWNLINK_DEDUPE_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60_000),
  DOWNLINK_GATEWAY_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  DOWNLINK_TENANT_PER_MINUTE: z.coerce.number().int().min(1).default(100),
  ROLLUPS_GROUP_ID: z.string().default('parking-rollups'),
  ROLLUPS_HEALTH_GROUP_ID: z.string().default('parking-rollups-health'),
  ROLLUPS_TICK_MS: z.coerce.number().int().min(10).default(30_000),
  ROLLUPS_TICK_MAX_ITEMS: z.coerce.number().int().min(1).max(10_000).default(100),
  ROLLUPS_LATE_HORIZON_MS: z.coerce
    .number()
    .int()
    .min(60 * 60_000)
    .default(24 * 60 * 60_000),
  DEVICE_STATUS_GROUP_ID: z.string().default('parking-device-status'),
  LIVENESS_GROUP_ID: z.string().default('parking-liveness'),
  LIVENESS_TICK_MS: z.coerce.number().int().min(10).default(10_000),
  LIVENESS_TICK_MAX_ITEMS: z.coerce.number().int().min(1).max(10_000).default(500),
  LIVENESS_DEVICE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(15 * 60_000),
  LIVENESS_GATEWAY_SILENT_MINUTES: z.coerce.number().int().min(1).max(1_440).default(10),
  LIVENESS_RAISE_MAX_LAG: z.coerce.number().int().min(0).default(1_000),
  LIVENESS_RAISE_SETTLE_MS: z.coerce.number().int().min(0).default(60_000),
  TOPIC_RESERVATION_EVENTS: z.string().default('parking.reservation-events.v1'),
  RESERVATIONS_TICK_MS: z.coerce.number().int().min(10).default(1_000),
  RESERVATIONS_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  RESERVATIONS_MAX_BATCHES: z.coerce.number().int().min(1).max(1_000).default(20),
  RESERVATIONS_JUDGE_MAX_LAG: z.coerce.number().int().min(0).default(100),
  RESERVATIONS_JUDGE_SETTLE_MS: z.coerce.number().int().min(0).default(60_000),
  RESERVATION_NO_SHOW_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(15 * 60_000),
  MQTT_DOWNLINK_CLIENT_ID: z.string().default('parking-downlinks'),
  CONSOLE_DIST: z.string().default('dashboards/console/dist'),
  API_JWT_SECRET: z.string().min(32).optional(),
  API_ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(30).max(3_600).default(900),
  API_REFRESH_TOKEN_TTL_S: z.coerce
    .number()
    .int()
    .min(300)
    .default(30 * 86_400),
  API_RATE_LIMIT_WINDOW_S: z.coerce.number().int().min(1).max(3_600).default(60),
  API_RATE_LIMIT_PER_IP: z.coerce.number().int().min(1).default(600),
  API_RATE_LIMIT_PER_USER: z.coerce.number().int().min(1).default(300),
  API_RATE_LIMIT_PER_API_KEY: z.coerce.number().int().min(1).default(600),
  API_LIVE_GROUP_PREFIX: z.string().min(1).default('parking-api-live'),
  API_LIVE_REPLAY_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(1_000),
  API_LIVE_REPLAY_WINDOW_S: z.coerce.number().int().min(1).max(86_400).default(3_600),
  API_LIVE_REPLAY_LOOKBACK_S: z.coerce.number().int().min(0).max(600).default(10),
  API_LIVE_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1_024).default(1_048_576),
  API_LIVE_HEARTBEAT_S: z.coerce.number().int().min(1).max(300).default(30),
  API_LIVE_MAX_CONNECTION_S: z.coerce.number().int().min(10).default(3_600),
  API_LIVE_MAX_CLIENTS: z.coerce.number().int().min(1).default(10_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
});

export type Env = Record<string, string | undefined>;

/** Every environment variable the platform reads (for checks that deployment files name only real ones). */
export const configVariables: readonly string[] = Object.keys(envSchema.shape);

function pgUrl(user: string, password: string, env: z.infer<typeof envSchema>): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${env.PG_HOST}:${env.PG_PORT}/${env.PG_DATABASE}`;
}

export function loadConfig(env: Env = process.env) {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new PlatformError('CONFIG_INVALID', `invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  const sasl =
    e.KAFKA_SASL_MECHANISM && e.KAFKA_SASL_USERNAME && e.KAFKA_SASL_PASSWORD
      ? {
          mechanism: e.KAFKA_SASL_MECHANISM,
          username: e.KAFKA_SASL_USERNAME,
          password: e.KAFKA_SASL_PASSWORD,
        }
      : undefined;
  const config = {
    logLevel: e.LOG_LEVEL,
    postgres: {
      // Three connection identities, one per database role (schemas/sql): migrations run as a role that may
      // create objects and roles; the API is bound by RLS; the pipeline writes for every tenant.
      migrateUrl: e.PG_MIGRATE_URL ?? pgUrl('postgres', e.PG_SUPERUSER_PASSWORD, e),
      apiUrl: e.PG_API_URL ?? pgUrl('parking_api', e.PG_API_PASSWORD ?? localPasswords.api, e),
      pipelineUrl:
        e.PG_PIPELINE_URL ?? pgUrl('parking_pipeline', e.PG_PIPELINE_PASSWORD ?? localPasswords.pipeline, e),
      // Set on the login roles by `schemas/migrate.ts` when given (the local stack gives the local ones).
      rolePasswords: { api: e.PG_API_PASSWORD, pipeline: e.PG_PIPELINE_PASSWORD },
      poolMax: e.PG_POOL_MAX,
    },
    kafka: {
      brokers: (e.KAFKA_BROKERS ?? `127.0.0.1:${e.KAFKA_PORT}`)
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean),
      clientId: e.KAFKA_CLIENT_ID,
      ssl: e.KAFKA_SSL,
      sasl,
      controlPort: e.KAFKA_CONTROL_PORT,
    },
    schemaRegistry: {
      url: e.SCHEMA_REGISTRY_URL ?? `http://127.0.0.1:${e.SCHEMA_REGISTRY_PORT}`,
      auth:
        e.SCHEMA_REGISTRY_USERNAME && e.SCHEMA_REGISTRY_PASSWORD
          ? { username: e.SCHEMA_REGISTRY_USERNAME, password: e.SCHEMA_REGISTRY_PASSWORD }
          : undefined,
    },
    mqtt: {
      url: e.MQTT_URL ?? `mqtt://127.0.0.1:${e.MQTT_PORT}`,
      username: e.MQTT_USERNAME,
      password: e.MQTT_PASSWORD,
      clientId: e.MQTT_CLIENT_ID,
      eventTopic: e.MQTT_EVENT_TOPIC,
    },
    redisUrl: e.REDIS_URL ?? `redis://127.0.0.1:${e.REDIS_PORT}`,
    api: { host: e.BIND_HOST, port: e.API_PORT, consoleDist: e.CONSOLE_DIST },
    // Access tokens are HS256 JWTs signed with this key (>= 32 bytes); refresh tokens are opaque and stored hashed.
    apiAuth: {
      jwtSecret: e.API_JWT_SECRET ?? localJwtSecret,
      accessTokenTtlS: e.API_ACCESS_TOKEN_TTL_S,
      refreshTokenTtlS: e.API_REFRESH_TOKEN_TTL_S,
    },
    // Requests per window, counted in Redis (shared by every API instance).
    apiRateLimit: {
      windowS: e.API_RATE_LIMIT_WINDOW_S,
      perIp: e.API_RATE_LIMIT_PER_IP,
      perUser: e.API_RATE_LIMIT_PER_USER,
      perApiKey: e.API_RATE_LIMIT_PER_API_KEY,
    },
    // WebSocket live updates (api/live): each instance consumes the change topic in its own group
    // (<prefix>-<random>); resume replays at most replayMaxEvents within replayWindowMs; a client with more than
    // maxBufferedBytes unsent is cut off (4008); connections are closed after maxConnectionMs (4001, re-auth).
    apiLive: {
      groupPrefix: e.API_LIVE_GROUP_PREFIX,
      replayMaxEvents: e.API_LIVE_REPLAY_MAX_EVENTS,
      replayWindowMs: e.API_LIVE_REPLAY_WINDOW_S * 1000,
      // Also replayed on resume: events positioned before the cursor, recorded at most this long before it.
      replayLookbackMs: e.API_LIVE_REPLAY_LOOKBACK_S * 1000,
      maxBufferedBytes: e.API_LIVE_MAX_BUFFERED_BYTES,
      heartbeatMs: e.API_LIVE_HEARTBEAT_S * 1000,
      maxConnectionMs: e.API_LIVE_MAX_CONNECTION_S * 1000,
      maxClients: e.API_LIVE_MAX_CLIENTS,
      closeGraceMs: 5_000,
    },
    ingest: {
      host: e.BIND_HOST,
      httpPort: e.INGEST_HTTP_PORT,
      bodyLimitBytes: e.INGEST_BODY_LIMIT_BYTES,
      // Below ChirpStack's 5 s HTTP integration timeout, so it gets our 503 rather than its own timeout.
      httpTimeoutMs: e.INGEST_HTTP_TIMEOUT_MS,
      mqttMaxInFlight: e.INGEST_MQTT_MAX_IN_FLIGHT,
      batch: {
        maxBatchRecords: e.INGEST_BATCH_MAX_RECORDS,
        lingerMs: e.INGEST_BATCH_LINGER_MS,
        maxQueuedRecords: e.INGEST_QUEUE_MAX_RECORDS,
      },
      dedup: {
        ttlMs: e.INGEST_DEDUP_TTL_S * 1000,
        maxEntries: e.INGEST_DEDUP_MAX_ENTRIES,
        redis: e.INGEST_DEDUP_REDIS,
      },
      // Empty: ChirpStack's Kafka integration is not consumed.
      chirpstackKafka: { topic: e.CHIRPSTACK_KAFKA_TOPIC, groupId: e.CHIRPSTACK_KAFKA_GROUP_ID },
    },
    topics: {
      uplinks: e.TOPIC_UPLINKS,
      deadLetter: e.TOPIC_DEAD_LETTER,
      joins: e.TOPIC_JOINS,
      deviceStatus: e.TOPIC_DEVICE_STATUS,
      deviceLocations: e.TOPIC_DEVICE_LOCATIONS,
      downlinkOutcomes: e.TOPIC_DOWNLINK_OUTCOMES,
      orphanUplinks: e.TOPIC_ORPHAN_UPLINKS,
      occupancyChanges: e.TOPIC_OCCUPANCY_CHANGES,
    },
    processors: { host: e.BIND_HOST, httpPort: e.PROCESSORS_HTTP_PORT },
    // Only the local stack (infra/stack.sh) has one: data, logs (log/) and pid files (run/) of its services.
    localStack: { dataDir: e.PARKING_DATA_DIR },
    occupancy: { groupId: e.OCCUPANCY_GROUP_ID },
    // Displays and downlinks (processors/display/run.ts): two consumer groups (occupancy changes, downlink
    // outcomes) and one tick that re-sends unconfirmed display commands and sends due downlinks through
    // ChirpStack's MQTT integration (client id MQTT_DOWNLINK_CLIENT_ID on the MQTT broker above).
    displays: {
      groupId: e.DISPLAY_GROUP_ID,
      outcomesGroupId: e.DOWNLINK_OUTCOMES_GROUP_ID,
      tickMs: e.DISPLAY_TICK_MS,
      tickMaxItems: e.DISPLAY_TICK_MAX_ITEMS,
      confirmTimeoutMs: e.DISPLAY_CONFIRM_TIMEOUT_MS,
      reservationLeadMs: e.DISPLAY_RESERVATION_LEAD_MS,
      mqttClientId: e.MQTT_DOWNLINK_CLIENT_ID,
      downlink: {
        maxAttempts: e.DOWNLINK_MAX_ATTEMPTS,
        baseBackoffMs: e.DOWNLINK_BASE_BACKOFF_MS,
        maxBackoffMs: e.DOWNLINK_MAX_BACKOFF_MS,
        dedupeWindowMs: e.DOWNLINK_DEDUPE_WINDOW_MS,
        gatewayPerMinute: e.DOWNLINK_GATEWAY_PER_MINUTE,
        tenantPerMinute: e.DOWNLINK_TENANT_PER_MINUTE,
      },
    },
    // Rollups (processors/rollups/run.ts): occupancy changes and uplinks (device health) in, rollup rows out; a
    // tick closes each site's buckets by the wall clock. Events older than the late horizon are dropped.
    rollups: {
      groupId: e.ROLLUPS_GROUP_ID,
      healthGroupId: e.ROLLUPS_HEALTH_GROUP_ID,
      tickMs: e.ROLLUPS_TICK_MS,
      tickMaxItems: e.ROLLUPS_TICK_MAX_ITEMS,
      lateHorizonMs: e.ROLLUPS_LATE_HORIZON_MS,
    },
    // Device status (processors/device-status/run.ts): status events in, device_status rows out.
    deviceStatus: { groupId: e.DEVICE_STATUS_GROUP_ID },
    // Liveness (processors/liveness/run.ts): uplinks in (device and gateways heard), alerts out; a tick raises
    // them. A device's interval is sensor_devices.expected_uplink_interval_s, else deviceIntervalMs. The alerts
    // topic is kept out of `topics` (the topics ingest writes), since only this processor writes it.
    liveness: {
      alertsTopic: e.TOPIC_LIVENESS_ALERTS,
      groupId: e.LIVENESS_GROUP_ID,
      tickMs: e.LIVENESS_TICK_MS,
      tickMaxItems: e.LIVENESS_TICK_MAX_ITEMS,
      deviceIntervalMs: e.LIVENESS_DEVICE_INTERVAL_MS,
      gatewaySilentMinutes: e.LIVENESS_GATEWAY_SILENT_MINUTES,
      // Ticks raise only after the uplink consumer has been within maxLag records of the log end for settleMs.
      raiseGate: { maxLag: e.LIVENESS_RAISE_MAX_LAG, settleMs: e.LIVENESS_RAISE_SETTLE_MS },
    },
    // Reservation lifecycle job (processors/reservations/run.ts): a tick, one transaction per batch, expires
    // reservations, marks no-shows (start + noShowGraceMs passed, space never occupied, with evidence) and
    // publishes every status change, the API's too, to eventsTopic. Only this job writes that topic.
    reservations: {
      eventsTopic: e.TOPIC_RESERVATION_EVENTS,
      tickMs: e.RESERVATIONS_TICK_MS,
      batchSize: e.RESERVATIONS_BATCH_SIZE,
      maxBatches: e.RESERVATIONS_MAX_BATCHES,
      noShowGraceMs: e.RESERVATION_NO_SHOW_GRACE_MS,
      // No-shows are judged only while the occupancy consumer (occupancy.groupId on topics.uplinks) has been
      // within judgeGate.maxLag records of the log end for judgeGate.settleMs (processors/reservations/reduce.ts).
      judgeGate: { maxLag: e.RESERVATIONS_JUDGE_MAX_LAG, settleMs: e.RESERVATIONS_JUDGE_SETTLE_MS },
    },
    // Platform -> ChirpStack sync of devices and gateways (api/chirpstack-sync) over ChirpStack's gRPC API
    // (host:port, Bearer API token). Disabled when the URL or the token is empty.
    chirpstackSync: {
      enabled: e.CHIRPSTACK_API_URL !== '' && e.CHIRPSTACK_API_TOKEN !== '',
      url: e.CHIRPSTACK_API_URL,
      token: e.CHIRPSTACK_API_TOKEN,
      tls: e.CHIRPSTACK_API_TLS,
      tickMs: e.CHIRPSTACK_SYNC_TICK_MS,
      batchSize: e.CHIRPSTACK_SYNC_BATCH,
      maxAttempts: e.CHIRPSTACK_SYNC_MAX_ATTEMPTS,
      baseBackoffMs: e.CHIRPSTACK_SYNC_BASE_BACKOFF_MS,
      maxBackoffMs: e.CHIRPSTACK_SYNC_MAX_BACKOFF_MS,
      callTimeoutMs: e.CHIRPSTACK_SYNC_CALL_TIMEOUT_MS,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
  };
  return deepFreeze(config);
}

export type Config = ReturnType<typeof loadConfig>;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
