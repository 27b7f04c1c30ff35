import { Router } from 'express';

export interface ViewerConfigBody {
  /** Where the gateway is, when configured (`GATEWAY_PUBLIC_URL`). */
  gatewayUrl?: string;
  /** Otherwise the viewer connects to its own page's host at this port (`GATEWAY_PORT`). */
  gatewayPort: number;
}

export interface ViewerGatewaySettings {
  publicUrl: string | undefined;
  port: number;
}

/**
 * Tells the viewer page where the Socket.IO gateway is (it may live on another host or port than
 * this API). From configuration only: a request's Host header never goes into the answer, so a
 * forged one cannot point a cached copy of it elsewhere.
 */
export function viewerConfigRoutes(gateway: ViewerGatewaySettings): Router {
  const router = Router();
  const body: ViewerConfigBody = { gatewayPort: gateway.port, ...(gateway.publicUrl ? { gatewayUrl: gateway.publicUrl.replace(/\/$/, '') } : {}) };
  router.get('/v1/config', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.json(body);
  });
  return router;
}
