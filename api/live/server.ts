import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { withPlatformAdmin } from '../../lib/db/platform-admin.js';
import type { Pool, PoolClient } from '../../lib/db/pool.js';
import { withTenant } from '../../lib/db/tenant.js';
import { PlatformError, isPlatformError, toPlatformError } from '../../lib/errors.js';
import type { Service } from '../../lib/lifecycle.js';
import type { Logger } from '../../lib/logger.js';
import { authenticate, type CredentialSource, type Principal } from '../auth/principal.js';
import type { TokenService } from '../auth/tokens.js';
import { statusOf } from '../problem.js';
import { LiveConnection, type DropReason } from './connection.js';
import { allowedKinds, closeCodes, isLiveEventKind, type LiveEventKind } from './envelope.js';
import type { LiveHub } from './hub.js';
import { parseResume, replayEvents, type ResumeRequest } from './replay.js';

export const livePath = '/api/v6/live';

/** Compiled once from Config['apiLive'] (lib/config.ts); all durations in ms. */
export interface LiveOptions {
  replayMaxEvents: number;
  replayWindowMs: number;
  /** Events positioned before a resume cursor and recorded at most this long before it are replayed too. */
  replayLookbackMs: number;
  maxBufferedBytes: number;
  heartbeatMs: number;
  maxConnectionMs: number;
  maxClients: number;
  closeGraceMs: number;
}

export interface LiveServerDeps {
  pool: Pool;
  tokens: TokenService;
  hub: LiveHub;
  logger: Logger;
  options: LiveOptions;
}

export interface LiveStats {
  connections: number;
  dropped: Record<DropReason, number>;
  refused: number;
}

export interface LiveServer extends Service {
  stats(): LiveStats;
}

/**
 * WebSocket live updates at `/api/v6/live` on the API's HTTP server. At connect, before the upgrade: the same
 * principal resolution as every HTTP route (`Authorization: Bearer`, `X-API-Key`, or `?access_token=` for browsers,
 * which cannot set headers on a WebSocket; `X-Tenant-Id` or `?tenantId=` selects the tenant), then 401/403/400 as
 * problem+json and no upgrade. A platform admin's subscription is one audited withPlatformAdmin unit of work, and
 * so is its replay. `?kinds=` narrows what the connection receives (subscribedKinds). Resume with `?lastEventId=`
 * or `?since=` (replay.ts). Heartbeat: a ping every heartbeatMs; no pong by the next one and the socket is
 * destroyed. Connections live at most maxConnectionMs (4001: reconnect with fresh credentials, so a revoked
 * membership or key stops a subscription within that time). stop() refuses new upgrades and closes every socket
 * with 1001, destroying any that do not complete the close in closeGraceMs.
 */
export function attachLiveServer(server: Server, deps: LiveServerDeps): LiveServer {
  const { logger, options } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4_096, perMessageDeflate: false });
  const connections = new Set<LiveConnection>();
  const dropped: Record<DropReason, number> = { 'slow-consumer': 0, heartbeat: 0 };
  let refused = 0;
  let stopping = false;

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, options.heartbeatMs);
  heartbeat.unref();

  function refuse(socket: Duplex, error: unknown, instance: string): void {
    refused++;
    const known = isPlatformError(error) ? error : toPlatformError(error);
    const status = statusOf(known.code);
    if (status >= 500) logger.error({ err: error, path: instance }, 'live upgrade failed');
    const body = JSON.stringify({
      type: `urn:parking:error:${known.code.toLowerCase()}`,
      title: status < 500 ? known.code : 'INTERNAL',
      status,
      detail: status < 500 ? known.message : 'internal error',
      instance,
    });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'Connection: close\r\nContent-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  async function read<T>(principal: Principal, requestId: string, work: (db: PoolClient) => Promise<T>) {
    if (principal.kind === 'platform_admin')
      return withPlatformAdmin(
        deps.pool,
        { userId: principal.userId, reason: `live updates in tenant ${principal.tenantId}`, requestId },
        work,
      );
    return withTenant(deps.pool, principal.tenantId, work, { actor: principal.actor, requestId });
  }

  function open(
    ws: WebSocket,
    principal: Principal,
    kinds: ReadonlySet<LiveEventKind>,
    resume: ResumeRequest | null,
    requestId: string,
  ): void {
    const connection = new LiveConnection(
      principal.tenantId,
      ws,
      kinds,
      {
        maxBufferedBytes: options.maxBufferedBytes,
        maxPendingEvents: options.replayMaxEvents,
        dedupeIds: options.replayMaxEvents + 1_024,
        closeGraceMs: options.closeGraceMs,
      },
      (reason) => {
        dropped[reason]++;
        logger.warn({ tenantId: principal.tenantId, requestId, reason }, 'live client cut off');
      },
    );
    connections.add(connection);
    // Subscribed before the replay reads: see LiveConnection for why this closes the seam.
    const unsubscribe = deps.hub.subscribe(connection);
    const lifetime = setTimeout(
      () => connection.close(closeCodes.reauthenticate, 'connection age limit: reconnect'),
      options.maxConnectionMs,
    );
    lifetime.unref();
    ws.on('pong', () => (connection.alive = true));
    ws.on('error', (error) => logger.debug({ err: error, requestId }, 'live socket error'));
    ws.on('close', () => {
      clearTimeout(lifetime);
      unsubscribe();
      connections.delete(connection);
    });
    if (!resume) {
      connection.finishReplay([], { status: 'none' });
      return;
    }
    read(principal, requestId, (db) =>
      replayEvents(db, principal.tenantId, resume, kinds, {
        maxEvents: options.replayMaxEvents,
        windowMs: options.replayWindowMs,
        lookbackMs: options.replayLookbackMs,
      }),
    ).then(
      (result) => connection.finishReplay(result.events, result.resume),
      (error: unknown) => {
        logger.error({ err: error, requestId }, 'live replay failed');
        connection.close(1011, 'replay failed: reconnect');
      },
    );
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://live.invalid');
    try {
      if (url.pathname !== livePath) throw new PlatformError('NOT_FOUND', `no WebSocket at ${url.pathname}`);
      if (stopping) throw new PlatformError('SHUTTING_DOWN', 'the API is shutting down');
      if (connections.size >= options.maxClients)
        throw new PlatformError('SHUTTING_DOWN', 'too many live connections on this instance', {
          retriable: true,
        });
      const principal = await authenticate(credentials(req, url), deps.pool, deps.tokens);
      const kinds = subscribedKinds(allowedKinds(principal), url.searchParams);
      const resume = parseResume(url.searchParams);
      const requestId = randomUUID();
      // A platform admin's subscription is a cross-tenant read: audited (and re-checked) like any other.
      if (principal.kind === 'platform_admin') await read(principal, requestId, async () => undefined);
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => open(ws, principal, kinds, resume, requestId));
    } catch (error) {
      refuse(socket, error, url.pathname);
    }
  }

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(req, socket, head);
  server.on('upgrade', onUpgrade);

  return {
    stats: () => ({ connections: connections.size, dropped: { ...dropped }, refused }),
    async stop() {
      stopping = true;
      clearInterval(heartbeat);
      server.off('upgrade', onUpgrade);
      for (const connection of connections) connection.close(closeCodes.goingAway, 'server shutting down');
      const deadline = Date.now() + options.closeGraceMs + 100;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * The kinds a connection receives: those asked for with `?kinds=a,b` (default: all) that the principal may read.
 * An unknown kind is a 400; none left, a 403 (a key that may read none, or asked only for kinds it may not read).
 */
export function subscribedKinds(
  allowed: ReadonlySet<LiveEventKind>,
  params: URLSearchParams,
): ReadonlySet<LiveEventKind> {
  const asked = params.get('kinds');
  let kinds = allowed;
  if (asked !== null) {
    const names = asked.split(',').map((k) => k.trim());
    const unknown = names.filter((k) => !isLiveEventKind(k));
    if (unknown.length > 0)
      throw new PlatformError(
        'VALIDATION_FAILED',
        `unknown live event kind: ${unknown.join(', ') || '(none)'}`,
      );
    kinds = new Set(names.filter((k): k is LiveEventKind => isLiveEventKind(k) && allowed.has(k)));
  }
  if (kinds.size === 0)
    throw new PlatformError('FORBIDDEN', 'these credentials may read none of these live event kinds');
  return kinds;
}

/**
 * The request's credentials as authenticate() reads them: headers first; for browsers, `access_token` stands for
 * `Authorization: Bearer` and `tenantId` for `X-Tenant-Id`. API keys only by header (keys do not expire, and URLs
 * end up in logs).
 */
function credentials(req: IncomingMessage, url: URL): CredentialSource {
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return {
    get(name) {
      const lower = name.toLowerCase();
      if (lower === 'authorization') {
        const token = url.searchParams.get('access_token');
        return header(lower) ?? (token ? `Bearer ${token}` : undefined);
      }
      if (lower === 'x-tenant-id') return header(lower) ?? url.searchParams.get('tenantId') ?? undefined;
      return header(lower);
    },
  };
}
