import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    /** X-Request-Id as received (when well formed) or generated; echoed on the response and audited. */
    requestId: string;
  }
}

const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;

/** Takes a caller's X-Request-Id when it is a plain token of at most 128 characters, otherwise makes one. */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    // Mounted app-wide and again in each API router: the first one decides.
    if (req.requestId) return next();
    const given = req.get('x-request-id');
    req.requestId = given && acceptable.test(given) ? given : randomUUID();
    res.set('X-Request-Id', req.requestId);
    next();
  };
}
