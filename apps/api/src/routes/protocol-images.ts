import { TilefarmError, type DatasetManifest, type ImageFormat, type RenderSpecInput, type RequestedRegionLimits } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { defaultRenderSpec, parseIiifIdentifier, placeRequest, type IiifIdentifier, type PixelRect, type SpecRegistry } from '@tilefarm/tile-requests';
import type { TileAnswer, TileRequester, TileService } from '../tile-service';

/** What the routes of other viewers' protocols (IIIF, Deep Zoom, CATMAID, OMERO.web) share. */
export interface ProtocolDeps {
  catalog: DatasetCatalog;
  specs: SpecRegistry;
  tiles: TileService;
  regions: RequestedRegionLimits;
  /** Base URL browsers reach this API at (from configuration, never from Host: info.json is cached). */
  publicUrl: string;
}

/** These protocols have no "pending" answer: wait (bounded) for the render, as /v1/tiles does by default. */
export async function waitForImage(tiles: TileService, requester: TileRequester, ...args: [string, unknown, Parameters<TileService['get']>[2]]): Promise<Extract<TileAnswer, { kind: 'image' }>> {
  const answer = await tiles.get(...args, true, requester);
  if (answer.kind !== 'image') throw new TilefarmError('render_timeout');
  return answer;
}

/**
 * One image of a protocol request: the grid tile it is (same content key, stored tile and render
 * as /v1/tiles), or a region render by the workers. `pad` (CATMAID) gives full-size edge tiles.
 */
export async function protocolImage(
  deps: ProtocolDeps,
  requester: TileRequester,
  manifest: DatasetManifest,
  specRef: unknown,
  at: { z: number; t: number; format: ImageFormat },
  rect: PixelRect,
  out: { width: number; height: number },
  what: string,
  pad?: { width: number; height: number },
): Promise<Extract<TileAnswer, { kind: 'image' }>> {
  const placed = placeRequest(manifest, rect, out, deps.regions, what, pad);
  // An inline spec takes the format asked for, so it is the same spec (id, key) as the one a
  // client would POST for that format.
  const spec = specRef !== null && typeof specRef === 'object' ? { ...(specRef as object), format: at.format } : specRef;
  return waitForImage(deps.tiles, requester, manifest.id, spec, { ...at, level: placed.level, x: placed.x, y: placed.y, region: placed.region });
}


export function checkPlane(manifest: DatasetManifest, z: number, t: number): void {
  if (z >= manifest.sizeZ) throw new TilefarmError('out_of_range', `z: ${z} is outside 0..${manifest.sizeZ - 1}`);
  if (t >= manifest.sizeT) throw new TilefarmError('out_of_range', `t: ${t} is outside 0..${manifest.sizeT - 1}`);
}

/**
 * The image an identifier names as IIIF writes them (`{dataset}` or `{dataset}~{specId}~z{n}~t{n}`,
 * Deep Zoom's names too): its dataset, its plane (checked), and the spec named, else the dataset's
 * default look.
 */
export async function openIdentifiedImage(deps: ProtocolDeps, raw: string): Promise<{ id: IiifIdentifier; manifest: DatasetManifest; spec: RenderSpecInput }> {
  const id = parseIiifIdentifier(raw);
  const manifest = await deps.catalog.get(id.dataset);
  checkPlane(manifest, id.z, id.t);
  const spec: RenderSpecInput = id.specId ? await deps.specs.get(id.specId) : defaultRenderSpec(manifest);
  return { id, manifest, spec };
}
