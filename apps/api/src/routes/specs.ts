import { Router } from 'express';
import { DatasetId, RenderSpec, TilefarmError } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { SpecRegistry, TilePlanner } from '@tilefarm/tile-requests';
import { visibleTo } from '../access';

export function specRoutes(specs: SpecRegistry, catalog: DatasetCatalog, planner: Pick<TilePlanner, 'checkSpec'>): Router {
  const router = Router();
  router.post('/v1/specs', async (req, res) => {
    // `?dataset=`: the spec is meant for that dataset, so it is checked against it (fits it, a full
    // tile within MAX_RENDER_COST) before it is stored; a dataset the caller may not see is
    // answered like a missing one.
    const dataset = req.query.dataset;
    if (dataset !== undefined) {
      if (typeof dataset !== 'string' || !DatasetId.safeParse(dataset).success) throw new TilefarmError('dataset_not_found', 'no such dataset');
      const manifest = await catalog.find(dataset);
      if (!manifest || !visibleTo(res, manifest)) throw new TilefarmError('dataset_not_found', `no dataset "${dataset}"`);
      const parsed = RenderSpec.safeParse(req.body);
      // A malformed spec is left to register, which names every bad field.
      if (parsed.success) planner.checkSpec(parsed.data, manifest);
    }
    const { id } = await specs.register(req.body);
    res.status(201).json({ id });
  });
  router.get('/v1/specs/:id', async (req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.json(await specs.get(String(req.params.id)));
  });
  return router;
}
