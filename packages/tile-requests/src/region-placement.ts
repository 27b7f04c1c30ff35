import { MAX_REGION_SIDE, TilefarmError, levelGrid, levelSize, type DatasetManifest, type RenderRegion, type RenderSpecInput, type RequestedRegionLimits } from '@tilefarm/contracts';

/** A rectangle of the full-resolution image, in pixels. */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Where a protocol's image request lands: one grid tile (shared, content-addressed), or a region render. */
export interface Placement {
  level: number;
  x: number;
  y: number;
  region?: RenderRegion;
}

type Geometry = Pick<DatasetManifest, 'width' | 'height' | 'tileSize' | 'levels'>;

/** Source tiles a region render may touch: bounds the worker's reads whatever the aspect ratio asked for. */
export const MAX_REGION_SOURCE_TILES = 1024;

/** The grid tile whose area and output size are exactly these, if any. */
export function alignedTile(m: Geometry, rect: PixelRect, out: { width: number; height: number }): { level: number; x: number; y: number } | undefined {
  for (let level = 0; level < m.levels; level++) {
    const span = m.tileSize * 2 ** level;
    if (rect.x % span !== 0 || rect.y % span !== 0) continue;
    const x = rect.x / span;
    const y = rect.y / span;
    const { cols, rows } = levelGrid(m, level);
    if (x >= cols || y >= rows) continue;
    const size = levelSize(m, level);
    if (rect.width !== Math.min(span, m.width - rect.x) || rect.height !== Math.min(span, m.height - rect.y)) continue;
    if (out.width !== Math.min(m.tileSize, size.width - x * m.tileSize) || out.height !== Math.min(m.tileSize, size.height - y * m.tileSize)) continue;
    return { level, x, y };
  }
  return undefined;
}

/**
 * Places "this rectangle at this output size": a grid tile when it is one (so every protocol's
 * request for it shares one stored tile and one render), else a region render read from the
 * coarsest stored level that still has at least one pixel per output pixel. `pad` (CATMAID) asks
 * for that canvas size, black beyond the image. Costs are bounded here, before any work:
 * output sides up to `maxSide`, at most MAX_REGION_SOURCE_TILES stored tiles read per channel.
 * Pure: no I/O; errors name the parameter (`what`).
 */
export function placeRequest(m: Geometry, rect: PixelRect, out: { width: number; height: number }, limits: RequestedRegionLimits, what = 'region', pad?: { width: number; height: number }): Placement {
  if (rect.width < 1 || rect.height < 1 || rect.x < 0 || rect.y < 0 || rect.x + rect.width > m.width || rect.y + rect.height > m.height) {
    throw new TilefarmError('out_of_range', `${what}: ${rect.x},${rect.y},${rect.width},${rect.height} is not inside the ${m.width}x${m.height} image`);
  }
  if (out.width < 1 || out.height < 1) throw new TilefarmError('invalid_tile', `${what}: output size ${out.width}x${out.height} is empty`);
  const padded = pad && (pad.width > out.width || pad.height > out.height);
  if (!padded) {
    const tile = alignedTile(m, rect, out);
    if (tile) return tile;
  }
  const maxSide = Math.min(limits.maxSide, MAX_REGION_SIDE);
  const biggest = Math.max(out.width, out.height, pad?.width ?? 0, pad?.height ?? 0);
  if (biggest > maxSide) throw new TilefarmError('invalid_tile', `${what}: output ${out.width}x${out.height} is larger than this server's maximum of ${maxSide}x${maxSide}`);
  if (out.width > rect.width || out.height > rect.height) throw new TilefarmError('invalid_tile', `${what}: output ${out.width}x${out.height} is larger than the region ${rect.width}x${rect.height} (no upscaling)`);
  const ratio = Math.min(rect.width / out.width, rect.height / out.height);
  const level = Math.max(0, Math.min(m.levels - 1, Math.floor(Math.log2(ratio) + 1e-9)));
  const f = 2 ** level;
  const span = m.tileSize * f;
  const cols = Math.min(out.width, Math.floor((rect.x + rect.width - 1) / span) - Math.floor(rect.x / span) + 1);
  const rows = Math.min(out.height, Math.floor((rect.y + rect.height - 1) / span) - Math.floor(rect.y / span) + 1);
  if (cols * rows > MAX_REGION_SOURCE_TILES) {
    throw new TilefarmError('invalid_tile', `${what}: reads ${cols * rows} stored tiles per channel, more than ${MAX_REGION_SOURCE_TILES}; ask for a smaller area or keep the aspect ratio`);
  }
  const region: RenderRegion = { ...rect, level, outWidth: out.width, outHeight: out.height };
  if (padded) {
    region.padWidth = Math.max(pad.width, out.width);
    region.padHeight = Math.max(pad.height, out.height);
  }
  return { level, x: 0, y: 0, region };
}

/** The dataset's own picture: every channel (up to the spec limit) in its colour and default window. */
export function defaultRenderSpec(m: Pick<DatasetManifest, 'channels'>, maxChannels = 64): RenderSpecInput {
  return {
    v: 1,
    channels: m.channels.slice(0, maxChannels).map((c, index) => ({ index, color: c.color, window: [c.window[0], c.window[1]] as [number, number] })),
    composite: 'add',
    format: 'jpeg',
    quality: 85,
  };
}
