import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

/**
 * The zod every API schema is built with: extended with `.openapi()` before any schema exists, so the same
 * definitions validate requests and generate the OpenAPI document (api/http/openapi.ts).
 */
extendZodWithOpenApi(z);

export { z };
