import { stableId } from '../shared/stable-id.js';

/**
 * Downlink jobs: a queue per device, sent through rate limits, confirmed by ChirpStack outcomes. Pure: the
 * state is plain data (the I/O side keeps it in PostgreSQL, tenant-owned), time comes in events (epoch ms).
 *
 * Promises:
 * - Coalescing: a device holds at most one unconfirmed job; a new request replaces it (latest wins) and the
 *   replaced one is reported `superseded` (the I/O side may flush it from ChirpStack's queue). A request with
 *   the same fPort and payload as the unconfirmed job keeps that job (no second send, no restarted backoff).
 *   So the queue is bounded by the number of devices.
 * - Dedupe: a request whose fPort and payload were confirmed for the device less than `dedupeWindowMs` ago is
 *   not sent (`skipped`), and clears any pending job (what the device shows is already that payload).
 * - Sending happens on `tick` only, devices in order of their job's enqueue time, then key. A job is sent when
 *   due and both token buckets (the device's gateway, if known, and the tenant) have a token; otherwise it waits
 *   for a later tick. Both buckets are taken together or not at all.
 * - Retries: attempt n (1-based) waits `min(maxBackoffMs, baseBackoffMs * 2^(n-1))` for its confirmation; then
 *   the job is sent again, up to `maxAttempts` sends, after which it is dead-lettered. A negative ack makes the
 *   job due again at the same backoff time.
 * - Confirmation: an unconfirmed-mode downlink is confirmed by a `txack`; a confirmed-mode one only by an `ack`
 *   with `acknowledged: true`. Outcomes for other job ids (superseded, dead-lettered, unknown) are ignored; an
 *   outcome for any earlier send of the current job counts (the frames are identical).
 * - The job id (also ChirpStack's queue item id) is derived from the request id, so replays give the same id.
 */
export interface DownlinkPolicy {
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  dedupeWindowMs: number;
  gatewayPerMinute: number;
  tenantPerMinute: number;
}

export const defaultDownlinkPolicy: Readonly<DownlinkPolicy> = Object.freeze({
  maxAttempts: 5,
  baseBackoffMs: 30_000,
  maxBackoffMs: 15 * 60_000,
  dedupeWindowMs: 60 * 60_000,
  gatewayPerMinute: 30,
  tenantPerMinute: 100,
});

/** A token bucket holding up to `perMinute` tokens, refilled continuously at `perMinute` per 60 000 ms. */
export interface TokenBucket {
  tokens: number;
  updatedAt: number;
}

export function refill(bucket: TokenBucket | undefined, perMinute: number, now: number): TokenBucket {
  if (!bucket) return { tokens: perMinute, updatedAt: now };
  const elapsed = Math.max(0, now - bucket.updatedAt);
  return {
    tokens: Math.min(perMinute, bucket.tokens + (elapsed * perMinute) / 60_000),
    updatedAt: Math.max(now, bucket.updatedAt),
  };
}

/** Takes one token if there is one; the bucket is refilled to `now` either way. */
export function takeToken(
  bucket: TokenBucket | undefined,
  perMinute: number,
  now: number,
): { bucket: TokenBucket; taken: boolean } {
  const filled = refill(bucket, perMinute, now);
  if (filled.tokens < 1) return { bucket: filled, taken: false };
  return { bucket: { ...filled, tokens: filled.tokens - 1 }, taken: true };
}

export interface DownlinkJob {
  jobId: string;
  requestId: string;
  correlationId: string | null;
  fPort: number;
  payloadHex: string;
  /** LoRaWAN confirmed downlink: needs the device's ack. */
  confirmed: boolean;
  enqueuedAt: number;
  /** 'queued': waiting to be sent at `dueAt`; 'sent': waiting for its outcome until `dueAt`. */
  status: 'queued' | 'sent';
  attempts: number;
  dueAt: number;
}

export interface DeviceQueue {
  tenantId: string;
  devEui: string;
  gatewayId: string | null;
  job: DownlinkJob | null;
  lastConfirmed: { fPort: number; payloadHex: string; at: number } | null;
}

export interface DownlinkState {
  /** Keyed by `${tenantId}/${devEui}`. */
  devices: Record<string, DeviceQueue>;
  gatewayBuckets: Record<string, TokenBucket>;
  tenantBuckets: Record<string, TokenBucket>;
}

export const initialDownlinkState: DownlinkState = { devices: {}, gatewayBuckets: {}, tenantBuckets: {} };

export type DownlinkEvent =
  | {
      type: 'enqueue';
      at: number;
      tenantId: string;
      devEui: string;
      /** The gateway the device was last heard by; null when unknown (only the tenant bucket applies). */
      gatewayId: string | null;
      /** Unique per request, e.g. `${commandId}:${resend}` from the display reducer; the job id derives from it. */
      requestId: string;
      /** Echoed on every effect of the job, e.g. the display's commandId, so the caller can route outcomes. */
      correlationId: string | null;
      fPort: number;
      payloadHex: string;
      confirmed: boolean;
    }
  | {
      type: 'outcome';
      at: number;
      tenantId: string;
      devEui: string;
      jobId: string;
      kind: 'ack' | 'txack';
      acknowledged: boolean | null;
    }
  | { type: 'tick'; now: number };

interface JobRef {
  tenantId: string;
  devEui: string;
  jobId: string;
  requestId: string;
  correlationId: string | null;
}
export type DownlinkEffect =
  | (JobRef & {
      type: 'send-downlink';
      gatewayId: string | null;
      fPort: number;
      payloadHex: string;
      confirmed: boolean;
      attempt: number;
    })
  | (JobRef & { type: 'downlink-confirmed'; kind: 'ack' | 'txack'; at: number })
  | (JobRef & { type: 'downlink-superseded'; by: string })
  | (JobRef & { type: 'downlink-skipped'; reason: 'already-confirmed' | 'same-as-pending' })
  | (JobRef & { type: 'downlink-dead-lettered'; attempts: number; at: number });

export interface DownlinkResult {
  state: DownlinkState;
  effects: DownlinkEffect[];
}

export function deviceKey(tenantId: string, devEui: string): string {
  return `${tenantId}/${devEui}`;
}

export function backoffMs(attempt: number, policy: DownlinkPolicy): number {
  return Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** Math.max(0, attempt - 1));
}

export function reduceDownlink(
  state: DownlinkState,
  event: DownlinkEvent,
  policy: DownlinkPolicy = defaultDownlinkPolicy,
): DownlinkResult {
  switch (event.type) {
    case 'enqueue':
      return onEnqueue(state, event, policy);
    case 'outcome':
      return onOutcome(state, event, policy);
    case 'tick':
      return onTick(state, event.now, policy);
  }
}

function withDevice(state: DownlinkState, queue: DeviceQueue): DownlinkState {
  return { ...state, devices: { ...state.devices, [deviceKey(queue.tenantId, queue.devEui)]: queue } };
}

function ref(queue: DeviceQueue, job: DownlinkJob): JobRef {
  return {
    tenantId: queue.tenantId,
    devEui: queue.devEui,
    jobId: job.jobId,
    requestId: job.requestId,
    correlationId: job.correlationId,
  };
}

function onEnqueue(
  state: DownlinkState,
  event: Extract<DownlinkEvent, { type: 'enqueue' }>,
  policy: DownlinkPolicy,
): DownlinkResult {
  const key = deviceKey(event.tenantId, event.devEui);
  const queue: DeviceQueue = {
    ...(state.devices[key] ?? {
      tenantId: event.tenantId,
      devEui: event.devEui,
      gatewayId: null,
      job: null,
      lastConfirmed: null,
    }),
    gatewayId: event.gatewayId,
  };
  const job: DownlinkJob = {
    jobId: stableId('downlink-job', event.tenantId, event.devEui, event.requestId),
    requestId: event.requestId,
    correlationId: event.correlationId,
    fPort: event.fPort,
    payloadHex: event.payloadHex,
    confirmed: event.confirmed,
    enqueuedAt: event.at,
    status: 'queued',
    attempts: 0,
    dueAt: event.at,
  };
  const same = (p: { fPort: number; payloadHex: string } | null) =>
    p !== null && p.fPort === job.fPort && p.payloadHex === job.payloadHex;

  const pending = queue.job;
  if (pending && (pending.requestId === job.requestId || same(pending)))
    return {
      state: withDevice(state, queue),
      effects:
        pending.requestId === job.requestId
          ? []
          : [{ type: 'downlink-skipped', reason: 'same-as-pending', ...ref(queue, job) }],
    };
  const effects: DownlinkEffect[] = [];
  if (pending) effects.push({ type: 'downlink-superseded', by: job.jobId, ...ref(queue, pending) });
  if (same(queue.lastConfirmed) && event.at - queue.lastConfirmed!.at < policy.dedupeWindowMs) {
    effects.push({ type: 'downlink-skipped', reason: 'already-confirmed', ...ref(queue, job) });
    return { state: withDevice(state, { ...queue, job: null }), effects };
  }
  return { state: withDevice(state, { ...queue, job }), effects };
}

function onOutcome(
  state: DownlinkState,
  event: Extract<DownlinkEvent, { type: 'outcome' }>,
  policy: DownlinkPolicy,
): DownlinkResult {
  const queue = state.devices[deviceKey(event.tenantId, event.devEui)];
  const job = queue?.job;
  // Any send of the current job may be confirmed, also one whose retry is waiting (rate-limited or nacked).
  if (!queue || !job || job.jobId !== event.jobId || job.attempts === 0) return { state, effects: [] };
  const positive = event.kind === 'ack' ? event.acknowledged === true : !job.confirmed;
  if (positive)
    return {
      state: withDevice(state, {
        ...queue,
        job: null,
        lastConfirmed: { fPort: job.fPort, payloadHex: job.payloadHex, at: event.at },
      }),
      effects: [{ type: 'downlink-confirmed', kind: event.kind, at: event.at, ...ref(queue, job) }],
    };
  if (event.kind === 'ack' && event.acknowledged === false) {
    if (job.attempts >= policy.maxAttempts)
      return {
        state: withDevice(state, { ...queue, job: null }),
        effects: [
          { type: 'downlink-dead-lettered', attempts: job.attempts, at: event.at, ...ref(queue, job) },
        ],
      };
    return { state: withDevice(state, { ...queue, job: { ...job, status: 'queued' } }), effects: [] };
  }
  return { state, effects: [] };
}

function onTick(state: DownlinkState, now: number, policy: DownlinkPolicy): DownlinkResult {
  const effects: DownlinkEffect[] = [];
  let next = state;
  const due = Object.entries(state.devices)
    .filter(([, q]) => q.job !== null && q.job.dueAt <= now)
    .sort(([ka, a], [kb, b]) => a.job!.enqueuedAt - b.job!.enqueuedAt || (ka < kb ? -1 : ka > kb ? 1 : 0));
  for (const [, queue] of due) {
    let job = queue.job!;
    if (job.status === 'sent') {
      if (job.attempts >= policy.maxAttempts) {
        effects.push({ type: 'downlink-dead-lettered', attempts: job.attempts, at: now, ...ref(queue, job) });
        next = withDevice(next, { ...queue, job: null });
        continue;
      }
      job = { ...job, status: 'queued' };
    }
    const gateway = queue.gatewayId
      ? takeToken(next.gatewayBuckets[queue.gatewayId], policy.gatewayPerMinute, now)
      : null;
    const tenant = takeToken(next.tenantBuckets[queue.tenantId], policy.tenantPerMinute, now);
    if ((gateway && !gateway.taken) || !tenant.taken) {
      next = withDevice(next, { ...queue, job });
      continue;
    }
    const attempt = job.attempts + 1;
    const sent: DownlinkJob = {
      ...job,
      status: 'sent',
      attempts: attempt,
      dueAt: now + backoffMs(attempt, policy),
    };
    next = {
      ...withDevice(next, { ...queue, job: sent }),
      tenantBuckets: { ...next.tenantBuckets, [queue.tenantId]: tenant.bucket },
      gatewayBuckets:
        gateway && queue.gatewayId
          ? { ...next.gatewayBuckets, [queue.gatewayId]: gateway.bucket }
          : next.gatewayBuckets,
    };
    effects.push({
      type: 'send-downlink',
      gatewayId: queue.gatewayId,
      fPort: job.fPort,
      payloadHex: job.payloadHex,
      confirmed: job.confirmed,
      attempt,
      ...ref(queue, job),
    });
  }
  return { state: next, effects };
}
