import { listQuery, pageOf, toPage } from '../http/pagination.js';
import type { ApiRoutes } from '../http/route.js';
import { z } from '../http/zod.js';
import {
  createSite as insertSite,
  deleteSite,
  getSite,
  listSites,
  updateSite as changeSite,
  type SiteRow,
} from '../services/sites.js';

export const siteSchema = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    timezone: z.string(),
    address: z.string().nullable(),
    latitude: z.number().nullable(),
    longitude: z.number().nullable(),
    metadata: z.record(z.unknown()),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi('Site');

function toView(r: SiteRow): z.infer<typeof siteSchema> {
  return {
    id: r.id,
    name: r.name,
    timezone: r.timezone,
    address: r.address,
    latitude: r.latitude,
    longitude: r.longitude,
    metadata: r.metadata,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

export const siteFields = {
  name: z.string().trim().min(1).max(200),
  timezone: z
    .string()
    .max(64)
    .refine(
      (tz) => Intl.supportedValuesOf('timeZone').includes(tz) || tz === 'UTC',
      'unknown IANA time zone',
    ),
  address: z.string().max(500).nullable(),
  latitude: z.number().min(-90).max(90).nullable(),
  longitude: z.number().min(-180).max(180).nullable(),
  metadata: z.record(z.unknown()),
};
const createSite = z.object(siteFields).partial().required({ name: true }).strict().openapi('SiteCreate');
const updateSite = z
  .object(siteFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to update')
  .openapi('SiteUpdate');
const siteParams = z.object({ siteId: z.string().uuid() });
const siteList = listQuery(['name', 'createdAt'], 'name').extend({
  q: z.string().max(100).optional().openapi({ description: 'case-insensitive substring of the name' }),
});

const spaces = { role: 'viewer', scope: 'spaces:read', write: false } as const;
const manage = { role: 'admin', scope: 'spaces:write', write: true } as const;

/** Sites of the selected tenant. Deleting a site that still has spaces is refused (409). */
export function addSiteRoutes(api: ApiRoutes): void {
  api.add({
    method: 'get',
    path: '/sites',
    operationId: 'listSites',
    summary: 'List sites',
    tag: 'sites',
    access: spaces,
    query: siteList,
    status: 200,
    response: pageOf(siteSchema),
    handler: async ({ query, read }) =>
      toPage(await read((db, tenantId) => listSites(db, tenantId, query)), query, toView),
  });
  api.add({
    method: 'post',
    path: '/sites',
    operationId: 'createSite',
    summary: 'Create a site',
    tag: 'sites',
    access: manage,
    body: createSite,
    status: 201,
    response: siteSchema,
    handler: async ({ body, write }) => toView(await write((db, tenantId) => insertSite(db, tenantId, body))),
  });
  api.add({
    method: 'get',
    path: '/sites/:siteId',
    operationId: 'getSite',
    summary: 'Get a site',
    tag: 'sites',
    access: spaces,
    params: siteParams,
    status: 200,
    response: siteSchema,
    handler: async ({ params, read }) =>
      toView(await read((db, tenantId) => getSite(db, tenantId, params.siteId))),
  });
  api.add({
    method: 'patch',
    path: '/sites/:siteId',
    operationId: 'updateSite',
    summary: 'Update a site (only the fields given)',
    tag: 'sites',
    access: manage,
    params: siteParams,
    body: updateSite,
    status: 200,
    response: siteSchema,
    handler: async ({ params, body, write }) =>
      toView(await write((db, tenantId) => changeSite(db, tenantId, params.siteId, body))),
  });
  api.add({
    method: 'delete',
    path: '/sites/:siteId',
    operationId: 'deleteSite',
    summary: 'Delete a site without spaces',
    tag: 'sites',
    access: manage,
    params: siteParams,
    status: 204,
    handler: async ({ params, write }) => {
      await write((db, tenantId) => deleteSite(db, tenantId, params.siteId));
      return undefined;
    },
  });
}
