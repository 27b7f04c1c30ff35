import { Router } from 'express';
import { dziDescriptor, parseDziTile } from '@tilefarm/tile-requests';
import { RenderSpec } from '@tilefarm/contracts';
import { sendImage } from './tiles';
import { openIdentifiedImage, protocolImage, type ProtocolDeps } from './protocol-images';
import { requesterOf } from '../access';

/**
 * Deep Zoom for OpenSeadragon: `/dzi/{name}.dzi` and `/dzi/{name}_files/{level}/{col}_{row}.{ext}`,
 * `name` as IIIF identifiers are written: `{dataset}` or `{dataset}~{specId}~z{n}~t{n}`.
 */
export function dziRoutes(deps: ProtocolDeps): Router {
  const router = Router();

  router.get(/^\/dzi\/([^/]+)\.dzi$/, async (req, res) => {
    const { manifest, spec } = await openIdentifiedImage(deps, String((req.params as Record<string, string>)[0]));
    res.setHeader('Cache-Control', 'public, max-age=60');
    // The spec's format, its default filled in, without parsing the whole spec again.
    res.type('application/xml').send(dziDescriptor(manifest, RenderSpec.shape.format.parse(spec.format)));
  });

  router.get(/^\/dzi\/([^/]+)_files\/([^/]+)\/([^/]+)$/, async (req, res) => {
    const params = req.params as Record<string, string>;
    const { id, manifest, spec } = await openIdentifiedImage(deps, String(params[0]));
    const tile = parseDziTile(manifest, String(params[1]), String(params[2]));
    const answer = await protocolImage(deps, requesterOf(res), manifest, id.specId ?? spec, { z: id.z, t: id.t, format: tile.format }, tile.rect, tile.out, `level ${tile.level}`);
    sendImage(req, res, answer);
  });

  return router;
}
