import { Router } from 'express';
import { formatIiifIdentifier, graySpec, iiifInfo, parseIiifImageRequest, type IiifIdentifier } from '@tilefarm/tile-requests';
import { sendImage } from './tiles';
import { openIdentifiedImage, protocolImage, type ProtocolDeps } from './protocol-images';
import { requesterOf } from '../access';

/**
 * IIIF Image API 3.0, level 1 plus extras (see packages/tile-requests/src/iiif-params.ts):
 * `/iiif/3/{identifier}/info.json` and `/iiif/3/{identifier}/{region}/{size}/{rotation}/{quality}.{format}`.
 * Requests on the advertised tile grid are the dataset's grid tiles (shared with every other
 * route); anything else is a region render by the workers.
 */
export function iiifRoutes(deps: ProtocolDeps): Router {
  const router = Router();

  const limits = { maxWidth: deps.regions.maxSide, maxHeight: deps.regions.maxSide };
  const serviceId = (base: string, id: IiifIdentifier) => `${base}/iiif/3/${formatIiifIdentifier(id)}`;

  router.get('/iiif/3/:id', async (req, res) => {
    const { id } = await openIdentifiedImage(deps, String(req.params.id));
    res.redirect(303, `${serviceId(deps.publicUrl, id)}/info.json`);
  });

  router.get('/iiif/3/:id/info.json', async (req, res) => {
    const { id, manifest } = await openIdentifiedImage(deps, String(req.params.id));
    const info = iiifInfo(manifest, serviceId(deps.publicUrl, id), limits);
    res.setHeader('Cache-Control', 'public, max-age=60');
    // JSON-LD when asked for (the spec's media type), plain JSON otherwise.
    res.type(req.accepts(['application/json', 'application/ld+json']) === 'application/ld+json' ? 'application/ld+json' : 'application/json');
    res.send(JSON.stringify(info));
  });

  router.get('/iiif/3/:id/:region/:size/:rotation/:qf', async (req, res) => {
    const { id, manifest, spec } = await openIdentifiedImage(deps, String(req.params.id));
    const p = req.params as Record<string, string>;
    const request = parseIiifImageRequest({ region: p.region!, size: p.size!, rotation: p.rotation!, qualityFormat: p.qf! }, manifest, limits);
    const specRef = request.quality === 'gray' ? graySpec(spec) : (id.specId ?? spec);
    const answer = await protocolImage(deps, requesterOf(res), manifest, specRef, { z: id.z, t: id.t, format: request.format }, request.region, { width: request.width, height: request.height }, 'region');
    sendImage(req, res, answer);
  });

  return router;
}
