import { Router, type Request } from 'express';
import { TilefarmError } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { omeroQueryToSpec, parseOmeroTile, singleTileLevel, type OmeroQuery } from '@tilefarm/tile-requests';
import type { TileService } from '../tile-service';
import { sendImage } from './tiles';

const INT = /^(0|[1-9][0-9]{0,6})$/;

function pathInt(req: Request, name: 'z' | 't'): number {
  const raw = String(req.params[name] ?? '');
  if (!INT.test(raw)) throw new TilefarmError('invalid_tile', `${name}: "${raw.slice(0, 20)}" is not a non-negative integer`);
  return Number(raw);
}

/** OMERO's URLs have no "pending" answer: wait (bounded) for the render, as /v1/tiles does by default. */
async function waitForImage(tiles: TileService, ...args: [string, unknown, Parameters<TileService['get']>[2]]) {
  const answer = await tiles.get(...args, true);
  if (answer.kind !== 'image') throw new TilefarmError('render_timeout');
  return answer;
}

/**
 * OMERO.web webgateway's rendering URLs, so a viewer written for OMERO needs only a base-URL change.
 * The query maps to a render spec (packages/tile-requests/src/omero-params.ts), which is
 * registered like a POSTed one and served by the same TileService as /v1/tiles: the same content
 * key, so both URLs share the stored tile. z and t in the path are 0-based in both systems.
 * Differences: tiles come from the dataset's own grid (w,h must be its tile size), `region=` and
 * `flip=` are refused, and render_image returns the finest pyramid level that fits in one tile
 * rather than the full-resolution plane.
 */
export function omeroRoutes(catalog: DatasetCatalog, tiles: TileService): Router {
  const router = Router();

  router.get('/webgateway/render_image_region/:dataset/:z/:t', async (req, res) => {
    const dataset = String(req.params.dataset);
    const manifest = await catalog.get(dataset);
    const query = req.query as OmeroQuery;
    const spec = omeroQueryToSpec(query, manifest);
    const position = { ...parseOmeroTile(query, manifest), z: pathInt(req, 'z'), t: pathInt(req, 't'), format: spec.format! };
    sendImage(req, res, await waitForImage(tiles, dataset, spec, position));
  });

  router.get('/webgateway/render_image/:dataset/:z/:t', async (req, res) => {
    const dataset = String(req.params.dataset);
    const manifest = await catalog.get(dataset);
    const spec = omeroQueryToSpec(req.query as OmeroQuery, manifest);
    const position = { level: singleTileLevel(manifest), x: 0, y: 0, z: pathInt(req, 'z'), t: pathInt(req, 't'), format: spec.format! };
    sendImage(req, res, await waitForImage(tiles, dataset, spec, position));
  });

  return router;
}
