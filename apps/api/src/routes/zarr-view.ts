import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Router, type Request, type Response } from 'express';
import { TilefarmError, levelGrid } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { SpecRegistry } from '@tilefarm/tile-requests';
import { viewArray, viewAttributes, viewChunk, viewGroup, type ChunkCache, type DatasetPixels } from '@tilefarm/zarr';

const INT = /^(0|[1-9][0-9]{0,6})$/;
const gzipAsync = promisify(gzip);

/** Whether the client takes gzip (`Accept-Encoding: gzip`, not `gzip;q=0`): browsers and Node's fetch do. */
function acceptsGzip(req: Request): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name !== 'gzip' && name !== '*') return false;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}
/** /zarr/{id}.zarr/{key}: the key is a metadata document or level/t/c/z/y/x. */
const PATH = /^\/zarr\/([^/]+)\.zarr\/(.*)$/;

export interface ZarrViewDeps {
  catalog: DatasetCatalog;
  specs: SpecRegistry;
  pixels: DatasetPixels;
  /** Decoded chunks of linked Zarrs, shared between requests. */
  chunks: ChunkCache;
}

function sendJson(req: Request, res: Response, version: number, doc: object): void {
  // Documents follow the dataset's current version: short caching, revalidated by version ETag.
  const etag = `"v${version}-${Buffer.from(JSON.stringify(req.query)).toString('base64url').slice(0, 40)}"`;
  res.setHeader('Cache-Control', 'public, max-age=60, must-revalidate');
  res.setHeader('ETag', etag);
  if (req.headers['if-none-match'] === etag) {
    res.status(304).end();
    return;
  }
  res.type('application/json').send(JSON.stringify(doc));
}

/**
 * A read-only OME-Zarr 0.4 view of every published dataset (packages/zarr/src/zarr-view.ts):
 * raw source pixels for clients that render themselves (Viv, vizarr, napari, zarrita). Chunks are
 * source tiles, read from storage (or from the linked Zarr) — never a render job.
 */
export function zarrViewRoutes(deps: ZarrViewDeps): Router {
  const router = Router();
  router.get(PATH, async (req, res) => {
    const m = PATH.exec(req.path)!;
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      throw new TilefarmError('dataset_not_found');
    }
    const manifest = await deps.catalog.get(id);
    const key = m[2]!;
    if (key === '.zgroup') return sendJson(req, res, manifest.version, viewGroup());
    if (key === '.zattrs') {
      const specId = req.query.spec;
      if (specId !== undefined && typeof specId !== 'string') throw new TilefarmError('bad_request', 'spec must be one render spec id');
      const spec = specId ? await deps.specs.get(specId) : undefined;
      return sendJson(req, res, manifest.version, viewAttributes(manifest, spec));
    }
    const parts = key.split('/');
    if (!INT.test(parts[0] ?? '') || Number(parts[0]) >= manifest.levels) throw new TilefarmError('not_found', `no such key in ${manifest.id}.zarr: ${key.slice(0, 60)}`);
    const level = Number(parts[0]);
    if (parts.length === 2 && parts[1] === '.zarray') return sendJson(req, res, manifest.version, viewArray(manifest, level));
    if (parts.length === 2 && parts[1] === '.zattrs') return sendJson(req, res, manifest.version, {});
    if (parts.length !== 6 || !parts.every((p) => INT.test(p))) throw new TilefarmError('not_found', `no such key in ${manifest.id}.zarr: ${key.slice(0, 60)}`);
    const [, t, c, z, y, x] = parts.map(Number) as [number, number, number, number, number, number];
    const grid = levelGrid(manifest, level);
    if (t >= manifest.sizeT || c >= manifest.channels.length || z >= manifest.sizeZ || y >= grid.rows || x >= grid.cols) throw new TilefarmError('not_found', `chunk ${key} is outside the array`);
    // Chunks go compressed on the wire as HTTP Content-Encoding (gzip, level 1: fast, and raw
    // microscopy samples halve or better), which every Zarr client over HTTP decodes unchanged
    // (the browser or fetch does it): the documents stay `compressor: null`, so raw readers like
    // the viewer's need nothing new either. Each encoding has its own ETag; caches vary on it.
    const gz = acceptsGzip(req);
    const etag = `"${manifest.id}-v${manifest.version}-${key.replace(/\//g, '.')}${gz ? '-gz' : ''}"`;
    res.setHeader('ETag', etag);
    res.vary('Accept-Encoding');
    res.setHeader('Cache-Control', 'public, max-age=60, must-revalidate');
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    const tile = await deps.pixels.read(manifest, { level, t, c, z, x, y }, deps.chunks);
    const raw = viewChunk(manifest, tile);
    res.type('application/octet-stream');
    if (!gz) return void res.send(raw);
    res.setHeader('Content-Encoding', 'gzip');
    res.send(await gzipAsync(raw, { level: 1 }));
  });
  return router;
}
