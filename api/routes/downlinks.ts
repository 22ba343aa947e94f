import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  getJob,
  listJobs,
  maxQueuedAgeS,
  queueHealthy,
  queueMetrics,
  resetQueueMetrics,
  type JobRow,
  type QueueMetrics,
} from '../services/downlinks.js';
import { devEuiSchema } from './devices.js';

const jobStatuses = ['queued', 'sent', 'acked', 'failed', 'expired', 'superseded'] as const;

const jobSchema = z
  .object({
    id: z.string().uuid(),
    devEui: z.string(),
    spaceId: z.string().uuid().nullable(),
    fPort: z.number().int(),
    confirmed: z.boolean(),
    reason: z.string(),
    status: z.enum(jobStatuses),
    attempts: z.number().int(),
    notBefore: z.string().datetime(),
    expiresAt: z.string().datetime().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi('DownlinkJob');

function jobView(r: JobRow): z.infer<typeof jobSchema> {
  return {
    id: r.id,
    devEui: r.dev_eui,
    spaceId: r.space_id,
    fPort: r.f_port,
    confirmed: r.confirmed,
    reason: r.reason,
    status: r.status,
    attempts: r.attempts,
    notBefore: r.not_before.toISOString(),
    expiresAt: r.expires_at?.toISOString() ?? null,
    lastError: r.last_error,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const metricsSchema = z
  .object({
    since: z.string().datetime(),
    jobs: z.record(z.number().int()),
    outcomes: z.record(z.number().int()),
    oldestQueuedAgeS: z.number().nullable(),
    healthy: z.boolean(),
    maxQueuedAgeS: z.number().int(),
  })
  .openapi('DownlinkQueueMetrics');

function metricsView(m: QueueMetrics): z.infer<typeof metricsSchema> {
  return {
    since: m.since.toISOString(),
    jobs: m.jobs,
    outcomes: m.outcomes,
    oldestQueuedAgeS: m.oldestQueuedAgeS,
    healthy: queueHealthy(m),
    maxQueuedAgeS,
  };
}

const jobList = listQuery(['createdAt', 'updatedAt'], '-createdAt').extend({
  status: z.enum(jobStatuses).optional(),
  devEui: devEuiSchema.optional(),
});
const jobParams = z.object({ jobId: z.string().uuid() });

const read = { role: 'viewer', scope: 'devices:read', write: false } as const;
const manage = { role: 'admin', scope: 'displays:write', write: true } as const;

/** The tenant's downlink queue: its jobs, outcome counts since the last reset, and health. */
export function addDownlinkRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/downlinks/jobs',
    operationId: 'listDownlinkJobs',
    summary: 'List downlink jobs (without payloads)',
    tag: 'downlinks',
    access: read,
    query: jobList,
    status: 200,
    response: pageOf(jobSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listJobs(db, tenantId, query)), query, jobView),
  });
  api.add({
    method: 'get',
    path: '/downlinks/jobs/:jobId',
    operationId: 'getDownlinkJob',
    summary: 'Get a downlink job',
    tag: 'downlinks',
    access: read,
    params: jobParams,
    status: 200,
    response: jobSchema,
    handler: async ({ params, read }) =>
      jobView(await read((db, tenantId) => getJob(db, tenantId, params.jobId))),
  });
  api.add({
    method: 'get',
    path: '/downlinks/metrics',
    operationId: 'downlinkMetrics',
    summary: 'Job counts by status and outcome counts since the last reset (default: the last 24 hours)',
    tag: 'downlinks',
    access: read,
    status: 200,
    response: metricsSchema,
    handler: async ({ read }) => metricsView(await read((db, tenantId) => queueMetrics(db, tenantId))),
  });
  api.add({
    method: 'post',
    path: '/downlinks/metrics/reset',
    operationId: 'resetDownlinkMetrics',
    summary: 'Count outcomes afresh from now',
    tag: 'downlinks',
    access: manage,
    status: 200,
    response: z.object({ since: z.string().datetime() }),
    handler: async ({ write }) => ({
      since: (await write((db, tenantId) => resetQueueMetrics(db, tenantId))).toISOString(),
    }),
  });
  api.add({
    method: 'get',
    path: '/downlinks/health',
    operationId: 'downlinkHealth',
    summary: 'Queue health: 503 when a due job has waited longer than maxQueuedAgeS',
    tag: 'downlinks',
    access: read,
    status: 200,
    otherStatuses: [503],
    response: metricsSchema,
    handler: async ({ read, setStatus }) => {
      const view = metricsView(await read((db, tenantId) => queueMetrics(db, tenantId)));
      if (!view.healthy) setStatus(503);
      return view;
    },
  });
}
