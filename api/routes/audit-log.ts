import { listQuery, pageOf, pageSql, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';

export const auditEntrySchema = z
  .object({
    id: z.string(),
    at: z.string().datetime(),
    actorType: z.enum(['user', 'api_key', 'system', 'webhook']),
    actorId: z.string(),
    action: z.enum(['create', 'update', 'delete']),
    entity: z.string(),
    entityId: z.string().nullable(),
    before: z.record(z.unknown()).nullable(),
    after: z.record(z.unknown()).nullable(),
    requestId: z.string().nullable(),
  })
  .openapi('AuditEntry');

interface AuditRow {
  id: string;
  at: Date;
  actor_type: z.infer<typeof auditEntrySchema>['actorType'];
  actor_id: string;
  action: z.infer<typeof auditEntrySchema>['action'];
  entity: string;
  entity_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  request_id: string | null;
  sort_key: string;
}

const auditList = listQuery(['at'], '-at').extend({
  entity: z.string().max(64).optional(),
  entityId: z.string().max(200).optional(),
  action: z.enum(['create', 'update', 'delete']).optional(),
  actorType: z.enum(['user', 'api_key', 'system', 'webhook']).optional(),
  actorId: z.string().max(200).optional(),
  requestId: z.string().max(128).optional(),
  from: z.string().datetime({ offset: true }).optional(),
  to: z.string().datetime({ offset: true }).optional(),
});

/** The tenant's audit log, read-only (written only by the database trigger). */
export function addAuditLogRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/audit-log',
    operationId: 'listAuditLog',
    summary: 'List audit entries, newest first by default',
    tag: 'audit-log',
    access: { role: 'admin', scope: 'admin', write: false },
    query: auditList,
    status: 200,
    response: pageOf(auditEntrySchema),
    handler: async ({ query, read }) => {
      const page = pageSql({ at: 'at' }, query, 10);
      const rows = await read(
        async (db, tenantId) =>
          (
            await db.query<AuditRow>(
              `SELECT id::text AS id, at, actor_type, actor_id, action, entity, entity_id, before, after, request_id,
                      ${page.sortKey}
                 FROM audit_log
                WHERE tenant_id = $1 AND ($2::text IS NULL OR entity = $2) AND ($3::text IS NULL OR entity_id = $3)
                  AND ($4::text IS NULL OR action = $4) AND ($5::text IS NULL OR actor_type = $5)
                  AND ($6::text IS NULL OR actor_id = $6) AND ($7::text IS NULL OR request_id = $7)
                  AND ($8::timestamptz IS NULL OR at >= $8) AND ($9::timestamptz IS NULL OR at < $9)
                  AND ${page.after}
                ORDER BY ${page.orderBy} LIMIT ${page.fetch}`,
              [
                tenantId,
                query.entity ?? null,
                query.entityId ?? null,
                query.action ?? null,
                query.actorType ?? null,
                query.actorId ?? null,
                query.requestId ?? null,
                query.from ?? null,
                query.to ?? null,
                ...page.params,
              ],
            )
          ).rows,
      );
      return toPage(rows, query, (r) => ({
        id: r.id,
        at: r.at.toISOString(),
        actorType: r.actor_type,
        actorId: r.actor_id,
        action: r.action,
        entity: r.entity,
        entityId: r.entity_id,
        before: r.before,
        after: r.after,
        requestId: r.request_id,
      }));
    },
  });
}
