import type { DType, PixelArray } from '@tilefarm/contracts';
import { allocPixels } from './source-tile-codec';

/** A whole plane (one channel, z, t) at one level, row-major. */
export interface Plane {
  width: number;
  height: number;
  dtype: DType;
  data: PixelArray;
}

/** Next pyramid level: plain 2x subsampling (every other pixel), the convention of the fixtures' writer. */
export function subsample2x(plane: Plane): Plane {
  const width = Math.ceil(plane.width / 2);
  const height = Math.ceil(plane.height / 2);
  const data = allocPixels(plane.dtype, width * height);
  for (let y = 0; y < height; y++) {
    const src = 2 * y * plane.width;
    const dst = y * width;
    for (let x = 0; x < width; x++) data[dst + x] = plane.data[src + 2 * x]!;
  }
  return { width, height, dtype: plane.dtype, data };
}

/** Cuts the tile at column tx, row ty out of a plane; edge tiles are cropped, not padded. */
export function cutTile(plane: Plane, tileSize: number, tx: number, ty: number): Plane {
  const x0 = tx * tileSize;
  const y0 = ty * tileSize;
  const width = Math.min(tileSize, plane.width - x0);
  const height = Math.min(tileSize, plane.height - y0);
  const data = allocPixels(plane.dtype, width * height);
  for (let y = 0; y < height; y++) {
    const start = (y0 + y) * plane.width + x0;
    data.set(plane.data.subarray(start, start + width), y * width);
  }
  return { width, height, dtype: plane.dtype, data };
}

/** Number of levels until the whole image fits in one tile. */
export function levelCountFor(width: number, height: number, tileSize: number): number {
  let levels = 1;
  while (Math.ceil(width / 2 ** (levels - 1)) > tileSize || Math.ceil(height / 2 ** (levels - 1)) > tileSize) levels++;
  return levels;
}

const SAMPLE_BYTES: Record<DType, number> = { uint8: 1, uint16: 2, float32: 4 };

/**
 * The bytes a dataset's source pyramid holds uncompressed (every level: about 4/3 of level 0).
 * The per-tenant quota counts the bytes ingests actually wrote (the manifest's `storedBytes`);
 * this estimate stands in only for manifests written before those were recorded.
 */
export function pyramidPixelBytes(d: { width: number; height: number; sizeZ: number; sizeT: number; sizeC: number; dtype: DType }): number {
  return Math.ceil((d.width * d.height * d.sizeZ * d.sizeT * d.sizeC * SAMPLE_BYTES[d.dtype] * 4) / 3);
}
