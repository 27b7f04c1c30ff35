import { Router, type Request } from 'express';
import { DTYPE_MAX, TilefarmError } from '@tilefarm/contracts';
import {
  defaultRenderSpec,
  omeroImageData,
  omeroQueryToSpec,
  omeroThumbnailSize,
  parseOmeroRegion,
  parseOmeroTile,
  rebinHistogram,
  singleTileLevel,
  type OmeroQuery,
} from '@tilefarm/tile-requests';
import { sendImage } from './tiles';
import { checkPlane, protocolImage, waitForImage, type ProtocolDeps } from './protocol-images';
import { requesterOf } from '../access';

const INT = /^(0|[1-9][0-9]{0,6})$/;

function pathInt(req: Request, name: string): number {
  const raw = String(req.params[name] ?? '');
  if (!INT.test(raw)) throw new TilefarmError('invalid_tile', `${name}: "${raw.slice(0, 20)}" is not a non-negative integer`);
  return Number(raw);
}

function queryInt(req: Request, name: string, fallback: number): number {
  const raw = req.query[name];
  if (raw === undefined || raw === '') return fallback;
  if (typeof raw !== 'string' || !INT.test(raw)) throw new TilefarmError('bad_request', `${name}: not a non-negative integer`);
  return Number(raw);
}

/**
 * OMERO.web webgateway's image URLs, so a viewer written for OMERO (OMERO.iviewer, OMERO.figure)
 * needs only a base-URL change; docs/omero.md lists what is supported and what is refused.
 * Rendering queries map to a render spec (packages/tile-requests/src/omero-params.ts), registered
 * like a POSTed one and served by the same TileService as /v1/tiles: the same content key, so both
 * URLs share the stored tile. z and t in the path are 0-based in both systems. `region=` crops are
 * region renders by the workers; render_image returns the finest pyramid level that fits in one
 * tile rather than the full-resolution plane.
 */
export function omeroRoutes(deps: ProtocolDeps): Router {
  const router = Router();
  const { catalog, tiles } = deps;

  router.get('/webgateway/render_image_region/:dataset/:z/:t', async (req, res) => {
    const manifest = await catalog.get(String(req.params.dataset));
    const query = req.query as OmeroQuery;
    const spec = omeroQueryToSpec(query, manifest);
    const at = { z: pathInt(req, 'z'), t: pathInt(req, 't'), format: spec.format! };
    if (query.tile === undefined && query.region !== undefined) {
      checkPlane(manifest, at.z, at.t);
      const rect = parseOmeroRegion(query, manifest);
      sendImage(req, res, await protocolImage(deps, requesterOf(res), manifest, spec, at, rect, { width: rect.width, height: rect.height }, 'region'));
      return;
    }
    const position = { ...parseOmeroTile(query, manifest), ...at };
    sendImage(req, res, await waitForImage(tiles, requesterOf(res), manifest.id, spec, position));
  });

  router.get('/webgateway/render_image/:dataset/:z/:t', async (req, res) => {
    const manifest = await catalog.get(String(req.params.dataset));
    const spec = omeroQueryToSpec(req.query as OmeroQuery, manifest);
    const position = { level: singleTileLevel(manifest), x: 0, y: 0, z: pathInt(req, 'z'), t: pathInt(req, 't'), format: spec.format! };
    sendImage(req, res, await waitForImage(tiles, requesterOf(res), manifest.id, spec, position));
  });

  // Thumbnails of the default rendering at the middle Z (OMERO's default plane), longer side `size`.
  const thumbnail = async (req: Request, res: Parameters<Parameters<Router['get']>[1]>[1]) => {
    const manifest = await catalog.get(String(req.params.dataset));
    const out = omeroThumbnailSize(req.params.size === undefined ? undefined : String(req.params.size), manifest, deps.regions.maxSide);
    const at = { z: queryInt(req, 'z', Math.floor(manifest.sizeZ / 2)), t: queryInt(req, 't', 0), format: 'jpeg' as const };
    checkPlane(manifest, at.z, at.t);
    const rect = { x: 0, y: 0, width: manifest.width, height: manifest.height };
    sendImage(req, res, await protocolImage(deps, requesterOf(res), manifest, defaultRenderSpec(manifest), at, rect, out, 'size'));
  };
  router.get('/webgateway/render_thumbnail/:dataset', thumbnail);
  router.get('/webgateway/render_thumbnail/:dataset/:size', thumbnail);
  router.get('/webgateway/render_birds_eye_view/:dataset', thumbnail);
  router.get('/webgateway/render_birds_eye_view/:dataset/:size', thumbnail);

  /** Each channel's full range: min/max of the stored statistics over all planes, else the pixel type's. */
  const ranges = async (dataset: string) => {
    const manifest = await catalog.get(dataset);
    const stats = await catalog.getStats(manifest.id, manifest.version);
    const range = manifest.channels.map((_, c) => {
      const planes = stats?.planes.filter((p) => p.c === c) ?? [];
      return planes.length > 0 ? ([Math.min(...planes.map((p) => p.min)), Math.max(...planes.map((p) => p.max))] as [number, number]) : ([0, DTYPE_MAX[manifest.dtype]] as [number, number]);
    });
    return { manifest, stats, range };
  };

  router.get('/webgateway/imgData/:dataset', async (req, res) => {
    const { manifest, range } = await ranges(String(req.params.dataset));
    res.setHeader('Cache-Control', 'public, max-age=60');
    res.json(omeroImageData(manifest, range, deps.publicUrl));
  });

  router.get('/webgateway/histogram_json/:dataset/channel/:c', async (req, res) => {
    const { manifest, stats } = await ranges(String(req.params.dataset));
    const c = pathInt(req, 'c');
    const z = queryInt(req, 'theZ', 0);
    const t = queryInt(req, 'theT', 0);
    if (c >= manifest.channels.length) throw new TilefarmError('out_of_range', `channel: ${c} is outside 0..${manifest.channels.length - 1}`);
    checkPlane(manifest, z, t);
    const plane = stats?.planes.find((p) => p.c === c && p.z === z && p.t === t);
    if (!plane) throw new TilefarmError('not_found', `no stored statistics for channel ${c}, z ${z}, t ${t}`);
    const bins = req.query.bins;
    if (bins !== undefined && typeof bins !== 'string') throw new TilefarmError('bad_request', 'bins: give it once');
    res.setHeader('Cache-Control', 'public, max-age=60');
    res.json({ data: rebinHistogram(plane.histogram.counts, bins), lo: plane.histogram.lo, hi: plane.histogram.hi });
  });

  return router;
}
