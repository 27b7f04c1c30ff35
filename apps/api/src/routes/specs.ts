import { Router } from 'express';
import type { SpecRegistry } from '@tilefarm/tile-requests';

export function specRoutes(specs: SpecRegistry): Router {
  const router = Router();
  router.post('/v1/specs', async (req, res) => {
    const { id } = await specs.register(req.body);
    res.status(201).json({ id });
  });
  router.get('/v1/specs/:id', async (req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.json(await specs.get(String(req.params.id)));
  });
  return router;
}
