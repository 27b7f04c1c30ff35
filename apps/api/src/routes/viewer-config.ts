import { Router } from 'express';

export interface ViewerConfigBody {
  gatewayUrl: string;
}

/** Tells the viewer page where the Socket.IO gateway is (it may live on another host or port than this API). */
export function viewerConfigRoutes(gatewayPublicUrl: string | undefined): Router {
  const router = Router();
  router.get('/v1/config', (req, res) => {
    const gatewayUrl = gatewayPublicUrl ?? `${req.protocol}://${req.hostname}:8081`;
    res.setHeader('Cache-Control', 'no-cache');
    res.json({ gatewayUrl: gatewayUrl.replace(/\/$/, '') } satisfies ViewerConfigBody);
  });
  return router;
}
