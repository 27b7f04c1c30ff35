import { Router } from 'express';
import { SpecId, TilefarmError, type DatasetManifest } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { catmaidOverviewArea, catmaidQueryToSpec, catmaidTileArea, parseCatmaidPath } from '@tilefarm/tile-requests';
import { sendImage } from './tiles';
import { checkPlane, protocolImage, type ProtocolDeps } from './protocol-images';
import { requesterOf } from '../access';

const TYPE9_PARAMS = ['color', 'min', 'max', 'gamma', 'quality'];

/**
 * CATMAID stack mirrors (docs/catmaid.md): `/catmaid/{dataset}/` serves the dataset's default
 * rendering (type 9's query edits it per channel), `/catmaid/{dataset}/{specId}/` a POSTed spec.
 * Tile paths of types 1, 4, 5 and 9 and their overview images, with an optional `t/` before `z/`.
 * Edge tiles are padded to the full tile size with black (CATMAID does not crop), here only.
 */
export function catmaidRoutes(deps: ProtocolDeps): Router {
  const router = Router();

  router.get(/^\/catmaid\/([^/]+)\/(.+)$/, async (req, res) => {
    const params = req.params as Record<string, string>;
    const manifest = await deps.catalog.get(String(params[0]));
    let rest = String(params[1]);
    let specRef: unknown;
    const first = rest.slice(0, rest.indexOf('/'));
    if (SpecId.safeParse(first).success) {
      if (TYPE9_PARAMS.some((p) => req.query[p] !== undefined)) {
        throw new TilefarmError('invalid_spec', `${TYPE9_PARAMS.join(', ')} apply to the dataset's default rendering: use /catmaid/${manifest.id}/ as the mirror URL`);
      }
      specRef = first;
      rest = rest.slice(first.length + 1);
    } else {
      specRef = catmaidQueryToSpec(req.query as Record<string, unknown>, manifest);
    }
    const request = parseCatmaidPath(rest);
    checkPlane(manifest, request.z, request.t);
    const at = { z: request.z, t: request.t, format: request.format };
    if (request.kind === 'overview') {
      const area = catmaidOverviewArea(manifest);
      sendImage(req, res, await protocolImage(deps, requesterOf(res), manifest, specRef, at, area.rect, area.out, 'small'));
      return;
    }
    const area = catmaidTileArea(manifest, request.row, request.col, request.zoom);
    sendImage(req, res, await protocolImage(deps, requesterOf(res), manifest, specRef, at, area.rect, area.out, `zoom ${request.zoom}`, area.pad));
  });

  return router;
}

const NM_PER_UNIT: Record<string, number> = { nm: 1, nanometer: 1, 'µm': 1000, 'μm': 1000, um: 1000, micron: 1000, micrometer: 1000, mm: 1e6, millimeter: 1e6, m: 1e9, meter: 1e9, pm: 1e-3, 'Å': 0.1, angstrom: 0.1 };

/** What CATMAID's admin asks for when adding a stack and its mirror, for one dataset (and spec). */
export function catmaidStackInfo(manifest: DatasetManifest, base: string, specId?: string) {
  const p = manifest.physicalSize;
  const nm = p ? NM_PER_UNIT[p.unit] : undefined;
  const resolution = p && nm !== undefined ? { x: p.x * nm, y: p.y * nm, z: (p.z ?? 1) * nm, unit: 'nm' } : { x: p?.x ?? 1, y: p?.y ?? 1, z: p?.z ?? 1, unit: p?.unit ?? 'px' };
  const url = `${base}/catmaid/${manifest.id}/${specId ? `${specId}/` : ''}`;
  const mirror = (type: number) => ({ title: `tilefarm type ${type}`, image_base: url, file_extension: 'jpg', tile_width: manifest.tileSize, tile_height: manifest.tileSize, tile_source_type: type });
  return {
    title: manifest.name ?? manifest.id,
    dimension: { x: manifest.width, y: manifest.height, z: manifest.sizeZ },
    ...(manifest.sizeT > 1 && { sizeT: manifest.sizeT, note: 'a 4-D stack: CATMAID puts t/ before z/ in tile paths' }),
    resolution,
    channels: manifest.channels.map((c) => ({ label: c.label, color: c.color, min: c.window[0], max: c.window[1] })),
    tile_width: manifest.tileSize,
    tile_height: manifest.tileSize,
    /** Zoom levels the pyramid stores (0 = full resolution); coarser ones are rendered on request. */
    zoom_levels: manifest.levels,
    num_zoom_levels: manifest.levels - 1,
    mirror: mirror(1),
    mirrors: [1, 4, 5, 9].map(mirror),
  };
}

export function catmaidInfoRoutes(catalog: DatasetCatalog, publicUrl: string): Router {
  const router = Router();
  router.get('/v1/datasets/:id/catmaid', async (req, res) => {
    const manifest = await catalog.get(String(req.params.id));
    const spec = req.query.spec;
    if (spec !== undefined && (typeof spec !== 'string' || !SpecId.safeParse(spec).success)) throw new TilefarmError('invalid_spec', 'spec: not a spec id');
    res.json(catmaidStackInfo(manifest, publicUrl, spec as string | undefined));
  });
  return router;
}
