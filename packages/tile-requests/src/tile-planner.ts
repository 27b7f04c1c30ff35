import {
  ImageFormat,
  RenderRegion,
  TilefarmError,
  levelGrid,
  type DatasetManifest,
  type RenderJob,
  type RenderSpec,
  type TileAddress,
} from '@tilefarm/contracts';
import { regionKey, tileKey, type DatasetCatalog } from '@tilefarm/datasets';
import { checkRenderCost, validateSpecForDataset, type RenderCost } from '@tilefarm/render';
import type { SpecRegistry } from './spec-registry';

export interface PlannedTile {
  key: string;
  tile: TileAddress;
  /** A region render instead of a grid tile (tile then names level, z, t and format only). */
  region?: RenderRegion;
  /** Sample operations its render costs (render-cost.ts): what fair share and the heavy lane go by. */
  cost: number;
}

/** A dataset and a render spec, checked against each other: what every tile of a request shares. */
export interface ResolvedSpec {
  manifest: DatasetManifest;
  specId: string;
  spec: RenderSpec;
  /** What one pixel of a render costs (see render-cost.ts); a tile costs perPixel × its pixels. */
  cost: RenderCost;
}

export interface TilePlan extends ResolvedSpec {
  tiles: PlannedTile[];
}

export interface RequestedPosition {
  level: number;
  z: number;
  t: number;
  x: number;
  y: number;
  format?: ImageFormat | undefined;
  /** Render this rectangle instead of tile (x, y): see RenderRegion (x and y above are then 0). */
  region?: RenderRegion | undefined;
}

/** Anyone may ask for a dataset unless a tenant check says otherwise (see apps' access rules). */
export type DatasetAccess = (manifest: DatasetManifest) => boolean;

/**
 * Turns "these tiles of this dataset in this spec" into content keys and render jobs, after
 * checking everything a worker would otherwise fail on: the dataset exists, the spec fits it,
 * and every coordinate is inside the image.
 */
export interface TilePlannerOptions {
  /**
   * Most sample operations one render may cost (MAX_RENDER_COST; see render-cost.ts): a spec that
   * would cost more on a full tile of the dataset, or a region that would, is refused with
   * spec_too_expensive before anything is queued. Unset: no ceiling.
   */
  maxRenderCost?: number | undefined;
}

export class TilePlanner {
  /** Spec × dataset version pairs already checked, with their cost. */
  private readonly checked = new Map<string, RenderCost>();
  private readonly maxRenderCost: number;

  constructor(
    private readonly catalog: DatasetCatalog,
    private readonly specs: SpecRegistry,
    options: TilePlannerOptions = {},
  ) {
    this.maxRenderCost = options.maxRenderCost ?? Infinity;
  }

  /** The dataset (if this caller may see it) and the spec (by id or inline), checked to fit each other. */
  async resolve(datasetId: string, specRef: unknown, access?: DatasetAccess): Promise<ResolvedSpec> {
    const manifest = await this.catalog.get(datasetId);
    if (access && !access(manifest)) throw new TilefarmError('dataset_not_found', `no dataset "${datasetId}"`);
    const { id: specId, spec } = await this.specs.resolve(specRef);
    const checkKey = `${manifest.id}/${manifest.version}/${specId}`;
    let cost = this.checked.get(checkKey);
    if (!cost) {
      cost = validateSpecForDataset(spec, manifest);
      if (this.checked.size > 50_000) this.checked.clear();
      // Remembered even when refused below: a repeated expensive spec is refused without parsing it again.
      this.checked.set(checkKey, cost);
    }
    // Every door (tiles, socket, IIIF, DZI, CATMAID, OMERO, regions) resolves here: a full tile's cost is the bound.
    checkRenderCost(cost, manifest.tileSize * manifest.tileSize, this.maxRenderCost);
    return { manifest, specId, spec, cost };
  }

  /**
   * A spec checked against a dataset as a tile request would be (fits it, a full tile within
   * MAX_RENDER_COST): for doors that keep a spec for later (saved settings, POST /v1/specs with a
   * dataset), so a spec no tile of the dataset could be rendered in is refused when saved.
   */
  checkSpec(spec: RenderSpec, manifest: DatasetManifest): RenderCost {
    const cost = validateSpecForDataset(spec, manifest);
    checkRenderCost(cost, manifest.tileSize * manifest.tileSize, this.maxRenderCost);
    return cost;
  }

  /** Content keys for positions of a resolved dataset and spec; every coordinate is checked. */
  tiles(resolved: ResolvedSpec, positions: RequestedPosition[]): TilePlan {
    const tiles = positions.map((p, i) => this.tile(resolved, p, positions.length > 1 ? `tiles.${i}.` : ''));
    return { ...resolved, tiles };
  }

  /** One position's content key, checked like `tiles` does (`path` prefixes error messages). */
  tile(resolved: ResolvedSpec, p: RequestedPosition, path = ''): PlannedTile {
    const { manifest, specId, spec, cost } = resolved;
    const tile = { level: p.level, z: p.z, t: p.t, x: p.x, y: p.y, format: p.format ?? spec.format };
    checkRange(manifest, tile, path);
    if (p.region) {
      const region = RenderRegion.parse(p.region);
      if (region.x + region.width > manifest.width || region.y + region.height > manifest.height) {
        throw new TilefarmError('out_of_range', `${path}region ${region.x},${region.y},${region.width},${region.height} extends past the ${manifest.width}x${manifest.height} image`);
      }
      checkRenderCost(cost, region.outWidth * region.outHeight, this.maxRenderCost, `a ${region.outWidth}x${region.outHeight} region`);
      return { key: regionKey(manifest.id, manifest.version, specId, tile, region), tile: { ...tile, level: region.level, x: 0, y: 0 }, region, cost: cost.perPixel * region.outWidth * region.outHeight };
    }
    // Edge tiles are smaller; a full tile's cost is close enough for sharing work out.
    return { key: tileKey(manifest.id, manifest.version, specId, tile), tile, cost: cost.perPixel * manifest.tileSize * manifest.tileSize };
  }

  async plan(datasetId: string, specRef: unknown, positions: RequestedPosition[], access?: DatasetAccess): Promise<TilePlan> {
    return this.tiles(await this.resolve(datasetId, specRef, access), positions);
  }
}

/** The job a worker runs for one planned tile. */
export function renderJobOf(plan: ResolvedSpec, planned: PlannedTile): RenderJob {
  const job: RenderJob = { v: 1, key: planned.key, dataset: plan.manifest.id, version: plan.manifest.version, specId: plan.specId, tile: planned.tile };
  if (planned.region) job.region = planned.region;
  return job;
}

function outOfRange(path: string, field: string, value: number, limit: number): never {
  throw new TilefarmError('out_of_range', `${path}${field}: ${value} is outside 0..${limit - 1}`);
}

/** The plane (level, z, t) exists in the dataset; a viewport names one. */
export function checkPlane(m: DatasetManifest, plane: { level: number; z: number; t: number }, path = ''): void {
  if (plane.level >= m.levels) outOfRange(path, 'level', plane.level, m.levels);
  if (plane.z >= m.sizeZ) outOfRange(path, 'z', plane.z, m.sizeZ);
  if (plane.t >= m.sizeT) outOfRange(path, 't', plane.t, m.sizeT);
}

function checkRange(m: DatasetManifest, tile: TileAddress, path: string): void {
  const fail = (field: string, value: number, limit: number) => outOfRange(path, field, value, limit);
  checkPlane(m, tile, path);
  const { cols, rows } = levelGrid(m, tile.level);
  if (tile.x >= cols) fail('x', tile.x, cols);
  if (tile.y >= rows) fail('y', tile.y, rows);
}
