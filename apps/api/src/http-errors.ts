import type { ErrorRequestHandler, RequestHandler } from 'express';
import { TilefarmError, isTilefarmError, isUnavailableError } from '@tilefarm/contracts';
import type { Logger } from '@tilefarm/telemetry';

/** Maps anything thrown to the public error table; a backing service that is down is 503, never a hang or a trace. */
export function toTilefarmError(e: unknown): TilefarmError {
  if (isTilefarmError(e)) return e;
  const err = e as { type?: string; status?: number; name?: string; message?: string; code?: string } | undefined;
  if (err?.type === 'entity.too.large') return new TilefarmError('payload_too_large', 'request body exceeds the size limit');
  if (err?.type === 'entity.parse.failed') return new TilefarmError('bad_request', 'request body is not valid JSON');
  if (err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') return new TilefarmError('bad_request', 'unsupported body encoding');
  if (err?.name === 'URIError') return new TilefarmError('bad_request', 'the URL is not validly percent-encoded');
  // Any other client error the framework raised (its own message may name internals: not passed on).
  if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) return new TilefarmError(err.status === 413 ? 'payload_too_large' : 'bad_request');
  if (isUnavailableError(err)) return new TilefarmError('unavailable');
  return new TilefarmError('internal');
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (e, req, res, _next) => {
    const error = toTilefarmError(e);
    if (error.status >= 500 && error.code !== 'not_implemented') logger.error({ err: e, url: req.originalUrl, code: error.code }, 'request failed');
    if (res.headersSent) return;
    if (error.code === 'unavailable' || error.code === 'render_timeout') res.setHeader('Retry-After', '1');
    res.status(error.status).json(error.toBody());
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new TilefarmError('not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`));
};
