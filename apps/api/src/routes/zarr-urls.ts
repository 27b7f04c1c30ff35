import { Router } from 'express';
import { SignZarrUrlsBody, TilefarmError, describeZodError, type ZarrUrlsSigned } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { TileUrlSigner } from '@tilefarm/tile-requests';
import { visibleTo } from '../access';

/** The view root a signature covers: every key under it is accepted with the root's `sig` (and `exp`). */
export function zarrRootPath(dataset: string): string {
  return `/zarr/${dataset}.zarr`;
}

/**
 * POST /v1/zarr-urls signs OME-Zarr view roots for a token holder, so clients that cannot send a
 * token (Viv, vizarr, a page from another origin) read raw pixels while URLs are signed. Each
 * dataset gets the tenant check of every dataset route: another tenant's answers like a missing one.
 */
export function zarrUrlRoutes(catalog: DatasetCatalog, signer: TileUrlSigner): Router {
  const router = Router();
  router.post('/v1/zarr-urls', async (req, res) => {
    const body = SignZarrUrlsBody.safeParse(req.body);
    if (!body.success) throw new TilefarmError('bad_request', describeZodError(body.error));
    for (const id of new Set(body.data.datasets)) {
      const manifest = await catalog.find(id);
      if (!manifest || !visibleTo(res, manifest)) throw new TilefarmError('dataset_not_found', `no dataset "${id}"`);
    }
    const answer: ZarrUrlsSigned = { urls: body.data.datasets.map((id) => signer.url('', zarrRootPath(id))) };
    res.setHeader('Cache-Control', 'no-store');
    res.json(answer);
  });
  return router;
}
