import { Router } from 'express';
import type { DatasetManifest, DatasetSummary } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { visibleTo } from '../access';

export function summarize(m: DatasetManifest): DatasetSummary {
  return {
    id: m.id,
    version: m.version,
    name: m.name,
    width: m.width,
    height: m.height,
    sizeZ: m.sizeZ,
    sizeT: m.sizeT,
    sizeC: m.channels.length,
    tileSize: m.tileSize,
    levels: m.levels,
    dtype: m.dtype,
    channels: m.channels,
    ...(m.physicalSize ? { physicalSize: m.physicalSize } : {}),
  };
}

export function datasetRoutes(catalog: DatasetCatalog): Router {
  const router = Router();
  router.get('/v1/datasets', async (_req, res) => {
    res.json({ datasets: (await catalog.list()).filter((m) => visibleTo(res, m)).map(summarize) });
  });
  router.get('/v1/datasets/:id', async (req, res) => {
    res.json(summarize(await catalog.get(String(req.params.id))));
  });
  // Per channel and plane statistics: the viewer's histograms and "auto" buttons.
  router.get('/v1/datasets/:id/stats', async (req, res) => {
    const m = await catalog.get(String(req.params.id));
    const stats = await catalog.getStats(m.id, m.version);
    res.setHeader('Cache-Control', 'public, max-age=60');
    res.json(stats ?? { v: 1, dataset: m.id, version: m.version, planes: [] });
  });
  return router;
}
