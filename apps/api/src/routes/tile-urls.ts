import { Router } from 'express';
import { SignTileUrlsBody, TILE_ADDRESS_PATH, TilefarmError, describeZodError, type TileUrlsSigned } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { TileUrlSigner } from '@tilefarm/tile-requests';
import { visibleTo } from '../access';

/**
 * POST /v1/tile-urls signs `/v1/tiles/...` address paths for a token holder, so render-on-request
 * URLs work when URL signing is on (an <img> or a CDN cannot send the token). Each dataset named
 * gets the same tenant check as a tile request: another tenant's answers like a missing one. The
 * access middleware has already refused callers without a token while signing is on.
 */
export function tileUrlRoutes(catalog: DatasetCatalog, signer: TileUrlSigner): Router {
  const router = Router();
  router.post('/v1/tile-urls', async (req, res) => {
    const body = SignTileUrlsBody.safeParse(req.body);
    if (!body.success) throw new TilefarmError('bad_request', describeZodError(body.error));
    const datasets = new Set(body.data.paths.map((p) => TILE_ADDRESS_PATH.exec(p)![1]!));
    for (const id of datasets) {
      const manifest = await catalog.find(id);
      if (!manifest || !visibleTo(res, manifest)) throw new TilefarmError('dataset_not_found', `no dataset "${id}"`);
    }
    const answer: TileUrlsSigned = { urls: body.data.paths.map((p) => signer.url('', p)) };
    res.setHeader('Cache-Control', 'no-store');
    res.json(answer);
  });
  return router;
}
