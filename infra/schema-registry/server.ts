// HTTP face of the local Schema Registry: the Confluent REST API subset that @kafkajs/confluent-schema-registry,
// Kafka Connect converters and the kafka-avro console tools call. Every answer is
// `application/vnd.schemaregistry.v1+json`; every error is Confluent's `{ error_code, message }`.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseCompatibilityLevel, parseVersion, RegistryError } from './registry.js';
import type { Registry, RegisterInput } from './registry.js';

export const contentType = 'application/vnd.schemaregistry.v1+json';
const acceptedBodyTypes = [
  'application/json',
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
];

const schemaBody = z.object({
  schema: z.string({ required_error: 'Empty schema', invalid_type_error: 'schema must be a string' }),
  schemaType: z.string().nullish(),
  references: z.array(z.unknown()).nullish(),
});
const configBody = z.object({ compatibility: z.string() });

/** The JSON body as a register/lookup input; a wrong shape is an invalid schema (42201), as in Confluent. */
function schemaInput(body: unknown): RegisterInput {
  const parsed = schemaBody.safeParse(body ?? {});
  if (!parsed.success) {
    throw new RegistryError('INVALID_SCHEMA', parsed.error.issues.map((issue) => issue.message).join('; '));
  }
  return parsed.data;
}

function compatibilityInput(body: unknown): ReturnType<typeof parseCompatibilityLevel> {
  const parsed = configBody.safeParse(body ?? {});
  return parseCompatibilityLevel(parsed.success ? parsed.data.compatibility : undefined);
}

function schemaId(raw: string): number {
  const id = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id)) throw new RegistryError('SCHEMA_NOT_FOUND', 'Schema not found');
  return id;
}

/** Confluent's convention: five-digit codes carry the status in their first three digits. */
export function httpStatus(errorCode: number): number {
  return errorCode >= 1000 ? Math.floor(errorCode / 100) : errorCode;
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(contentType).send(JSON.stringify(body));
}

/** Route params are always present on matched routes; this narrows them for noUncheckedIndexedAccess. */
function param(req: Request, name: string): string {
  const value = (req.params as Record<string, string | undefined>)[name];
  if (value === undefined) throw new RegistryError('BAD_REQUEST', `missing path parameter ${name}`);
  return value;
}

function flag(req: Request, name: string): boolean {
  return req.query[name] === 'true';
}

/** Builds the express app over `registry`. No listening here: startServer does that. */
export function createApp(registry: Registry, logger: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ type: acceptedBodyTypes, limit: '4mb' }));

  app.get('/', (_req, res) => send(res, 200, {}));
  app.get('/schemas/types', (_req, res) => send(res, 200, ['AVRO']));
  app.get('/mode', (_req, res) => send(res, 200, { mode: 'READWRITE' }));

  app.get('/schemas/ids/:id', (req, res) => {
    send(res, 200, { schema: registry.schemaById(schemaId(param(req, 'id'))) });
  });
  app.get('/schemas/ids/:id/versions', (req, res) => {
    send(res, 200, registry.versionsOfId(schemaId(param(req, 'id'))));
  });
  app.get('/schemas/ids/:id/subjects', (req, res) => {
    const subjects = registry.versionsOfId(schemaId(param(req, 'id'))).map((entry) => entry.subject);
    send(res, 200, [...new Set(subjects)]);
  });

  app.get('/subjects', (_req, res) => send(res, 200, registry.subjectNames()));
  app.post('/subjects/:subject', (req, res) => {
    send(res, 200, registry.lookup(param(req, 'subject'), schemaInput(req.body)));
  });
  app.delete('/subjects/:subject', (req, res) => {
    send(res, 200, registry.deleteSubject(param(req, 'subject'), flag(req, 'permanent')));
  });
  app.get('/subjects/:subject/versions', (req, res) => {
    send(res, 200, registry.versions(param(req, 'subject')));
  });
  app.post('/subjects/:subject/versions', (req, res) => {
    const subject = param(req, 'subject');
    const registered = registry.register(subject, schemaInput(req.body));
    logger.info({ subject, id: registered.id, version: registered.version }, 'schema registered');
    send(res, 200, { id: registered.id });
  });
  app.get('/subjects/:subject/versions/:version', (req, res) => {
    send(res, 200, registry.version(param(req, 'subject'), parseVersion(param(req, 'version'))));
  });
  app.get('/subjects/:subject/versions/:version/schema', (req, res) => {
    // Confluent answers with the schema text itself, not wrapped in an object.
    const found = registry.version(param(req, 'subject'), parseVersion(param(req, 'version')));
    res.status(200).type(contentType).send(found.schema);
  });
  app.get('/subjects/:subject/versions/:version/referencedby', (req, res) => {
    registry.version(param(req, 'subject'), parseVersion(param(req, 'version')));
    send(res, 200, []);
  });
  app.delete('/subjects/:subject/versions/:version', (req, res) => {
    const version = parseVersion(param(req, 'version'));
    send(res, 200, registry.deleteVersion(param(req, 'subject'), version, flag(req, 'permanent')));
  });

  app.get('/config', (_req, res) => send(res, 200, { compatibilityLevel: registry.globalCompatibility() }));
  app.put('/config', (req, res) => {
    const level = compatibilityInput(req.body);
    registry.setGlobalCompatibility(level);
    send(res, 200, { compatibility: level });
  });
  app.get('/config/:subject', (req, res) => {
    const subject = param(req, 'subject');
    // The kafkajs client relies on the 404 to detect a first registration: only answer with the global level
    // when asked to.
    const level =
      registry.subjectCompatibility(subject) ??
      (flag(req, 'defaultToGlobal') ? registry.globalCompatibility() : undefined);
    if (level === undefined) {
      throw new RegistryError(
        'SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED',
        `Subject '${subject}' does not have subject-level compatibility configured`,
      );
    }
    send(res, 200, { compatibilityLevel: level });
  });
  app.put('/config/:subject', (req, res) => {
    const level = compatibilityInput(req.body);
    registry.setSubjectCompatibility(param(req, 'subject'), level);
    send(res, 200, { compatibility: level });
  });
  app.delete('/config/:subject', (req, res) => {
    const subject = param(req, 'subject');
    const previous = registry.subjectCompatibility(subject) ?? registry.globalCompatibility();
    registry.setSubjectCompatibility(subject, null);
    send(res, 200, { compatibilityLevel: previous });
  });

  app.post('/compatibility/subjects/:subject/versions/:version', (req, res) => {
    const version = parseVersion(param(req, 'version'));
    const result = registry.testCompatibility(param(req, 'subject'), version, schemaInput(req.body));
    const verbose = flag(req, 'verbose');
    send(
      res,
      200,
      verbose
        ? { is_compatible: result.isCompatible, messages: result.messages }
        : { is_compatible: result.isCompatible },
    );
  });

  app.use((req, res) =>
    send(res, 404, { error_code: 404, message: `HTTP 404 Not Found: ${req.method} ${req.path}` }),
  );
  app.use(errorHandler(logger));
  return app;
}

/** The one place where errors become HTTP answers. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof RegistryError) {
      if (error.retriable) logger.error({ err: error, path: req.path }, 'registry store error');
      send(res, httpStatus(error.errorCode), { error_code: error.errorCode, message: error.message });
      return;
    }
    // body-parser errors (malformed JSON, body too large) carry their own 4xx status.
    const status = bodyParserStatus(error);
    if (status !== undefined) {
      send(res, status, {
        error_code: status,
        message: error instanceof Error ? error.message : 'bad request',
      });
      return;
    }
    logger.error({ err: error, path: req.path }, 'unexpected error');
    send(res, 500, { error_code: 50001, message: 'Error in the backend data store' });
  };
}

function bodyParserStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('status' in error)) return undefined;
  const status = error.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

export interface ServerOptions {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  readonly port: number;
  /** How long stop() lets in-flight requests finish before cutting connections. */
  readonly graceMs?: number;
}

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  /** Stops accepting, waits up to graceMs for in-flight requests, then closes the registry's log. */
  stop(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const app = createApp(options.registry, options.logger);
  const server = await listen(app, options.host, options.port);
  const port = (server.address() as AddressInfo).port;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= close(server, options.graceMs ?? 5_000).finally(() => options.registry.close());
    return stopping;
  };
  return { port, url: `http://${options.host}:${port}`, stop };
}

function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(server)));
  });
}

function close(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  });
}
