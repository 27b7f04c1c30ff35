import type { RequestHandler } from 'express';
import cors from 'cors';

/** Routes that answer with images (or describe them to a viewer): what other origins' viewers fetch. */
const IMAGE_PREFIXES = ['/iiif/', '/dzi/', '/catmaid/', '/webgateway/', '/v1/tiles/', '/tiles/', '/v1/datasets/', '/zarr/'];

/**
 * CORS for the image routes: viewers on other origins (CATMAID's WebGL layers and its mirror
 * canary, OpenSeadragon with crossOriginPolicy, OpenLayers) read pixels only with it. `origins`
 * is CORS_ORIGINS parsed: '*' or a list; empty = no CORS headers. Preflights are answered here,
 * before the access checks (a browser sends them without credentials).
 */
export function imageCors(origins: '*' | string[]): RequestHandler {
  const handler = imageCorsHeaders(origins);
  if (!handler) return (_req, _res, next) => next();
  return (req, res, next) => (IMAGE_PREFIXES.some((p) => req.path.startsWith(p)) ? handler(req, res, next) : next());
}

/** The CORS handler of imageCors for a request already known to be for an image (no Express needed); none when CORS is off. */
export function imageCorsHeaders(origins: '*' | string[]): ReturnType<typeof cors> | undefined {
  if (origins !== '*' && origins.length === 0) return undefined;
  return cors({
    origin: origins === '*' ? '*' : origins,
    methods: ['GET', 'HEAD', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-None-Match', 'Range'],
    exposedHeaders: ['ETag', 'X-Tile-Key', 'Content-Length'],
    maxAge: 600,
  });
}

/** CORS_ORIGINS: unset = '*' where no access tokens are configured, none where they are. */
export function corsOrigins(configured: string | undefined, tokensConfigured: boolean): '*' | string[] {
  if (configured === undefined || configured.trim() === '') return tokensConfigured ? [] : '*';
  if (configured.trim() === '*') return '*';
  return configured
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
}
