import { levelSize, type DatasetManifest, type DType, type PixelArray, type RenderRegion, type SourceTile } from '@tilefarm/contracts';

/**
 * Which stored pixel each output pixel of a region render takes. Sampling follows the pyramid's
 * own rule (every 2^k-th pixel, see packages/datasets/src/pyramid.ts), so a region that lines up
 * with a level's grid gives exactly that level's pixels, and a Deep Zoom level coarser than the
 * stored pyramid gives what one more stored level would have held. Other ratios take the nearest
 * pixel at or before the output pixel's top-left corner. Pure: no I/O.
 */
export interface RegionSampling {
  level: number;
  width: number;
  height: number;
  /** Column of the stored level read by each output column (and row for each output row). */
  cols: Int32Array;
  rows: Int32Array;
  /** Stored tiles (column x, row y at `level`) that the sampling touches. */
  tiles: { x: number; y: number }[];
}

/** Full-resolution pixels per output pixel: an exact power of two when the output is that level's size. */
function stepOf(length: number, out: number): number {
  const m = Math.max(0, Math.round(Math.log2(length / out)));
  return Math.ceil(length / 2 ** m) === out ? 2 ** m : length / out;
}

function axis(start: number, length: number, out: number, level: number, levelLength: number): Int32Array {
  const step = stepOf(length, out);
  const f = 2 ** level;
  const map = new Int32Array(out);
  for (let o = 0; o < out; o++) map[o] = Math.min(levelLength - 1, Math.floor((start + Math.floor(o * step)) / f));
  return map;
}

export function regionSampling(manifest: Pick<DatasetManifest, 'width' | 'height' | 'tileSize'>, region: RenderRegion): RegionSampling {
  const size = levelSize(manifest, region.level);
  const cols = axis(region.x, region.width, region.outWidth, region.level, size.width);
  const rows = axis(region.y, region.height, region.outHeight, region.level, size.height);
  const ts = manifest.tileSize;
  const tx = [...new Set(Array.from(cols, (c) => Math.floor(c / ts)))];
  const ty = [...new Set(Array.from(rows, (r) => Math.floor(r / ts)))];
  return { level: region.level, width: region.outWidth, height: region.outHeight, cols, rows, tiles: ty.flatMap((y) => tx.map((x) => ({ x, y }))) };
}

function allocPixels(dtype: DType, n: number): PixelArray {
  return dtype === 'uint8' ? new Uint8Array(n) : dtype === 'uint16' ? new Uint16Array(n) : new Float32Array(n);
}

/** The output samples of one channel, given the stored tiles the sampling named (edge tiles cropped, as stored). */
export function sampleRegion(s: RegionSampling, tileSize: number, dtype: DType, tileAt: (x: number, y: number) => SourceTile): SourceTile {
  const data: PixelArray = allocPixels(dtype, s.width * s.height);
  const tileCol = Array.from(s.cols, (c) => Math.floor(c / tileSize));
  const inTileCol = Array.from(s.cols, (c) => c % tileSize);
  for (let oy = 0; oy < s.height; oy++) {
    const row = s.rows[oy]!;
    const ty = Math.floor(row / tileSize);
    const inRow = row % tileSize;
    let current = -1;
    let tile: SourceTile | undefined;
    const base = oy * s.width;
    for (let ox = 0; ox < s.width; ox++) {
      const tx = tileCol[ox]!;
      if (tx !== current) {
        tile = tileAt(tx, ty);
        current = tx;
      }
      data[base + ox] = tile!.data[inRow * tile!.width + inTileCol[ox]!]!;
    }
  }
  return { width: s.width, height: s.height, dtype, data };
}

/** An RGB image placed at the top-left of a black canvas (CATMAID wants full tiles at the edges). */
export function padRgb(rgb: Uint8Array, width: number, height: number, padWidth: number, padHeight: number): Uint8Array {
  if (padWidth <= width && padHeight <= height) return rgb;
  const out = new Uint8Array(padWidth * padHeight * 3);
  for (let y = 0; y < height; y++) out.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * padWidth * 3);
  return out;
}
