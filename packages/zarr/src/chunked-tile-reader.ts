import type { PixelArray, SourceTile } from '@tilefarm/contracts';
import type { NgffImage } from './ngff-image';
import type { DecodedChunk, ZarrArrayHandle } from './zarr-library';

/** Where decoded chunks are kept between tiles (the worker's byte-bounded source cache). */
export interface ChunkCache {
  getOrLoad(key: string, load: () => Promise<DecodedChunk>): Promise<unknown>;
}

export interface TileRegion {
  level: number;
  t: number;
  c: number;
  z: number;
  /** Pixel rectangle at that level, already cut at the level's edge. */
  x0: number;
  y0: number;
  width: number;
  height: number;
}

function allocate(dtype: NgffImage['dtype'], n: number): PixelArray {
  return dtype === 'uint8' ? new Uint8Array(n) : dtype === 'uint16' ? new Uint16Array(n) : new Float32Array(n);
}

/**
 * A tile is assembled from the chunks it overlaps: a chunk may be larger than a tile (1024²: many
 * tiles share it, hence the cache), smaller (64³), or hold several z slices. Missing chunks are the
 * fill value (zarrita decodes them so); pixels past a level array's edge (a level rounded down
 * where our pyramid rounds up) are the fill value too.
 */
export async function readTileFromChunks(image: NgffImage, arrays: ZarrArrayHandle[], region: TileRegion, cache: ChunkCache, cacheKeyPrefix: string): Promise<SourceTile> {
  const array = arrays[region.level];
  if (!array) throw new RangeError(`level ${region.level} is not in this image`);
  const { axes } = image;
  const out = allocate(image.dtype, region.width * region.height);
  if (image.fillValue !== 0) out.fill(image.fillValue);
  const iy = axes.indexOf('y');
  const ix = axes.indexOf('x');
  const fixed: Partial<Record<'t' | 'c' | 'z', number>> = { t: region.t, c: region.c, z: region.z };
  const chunkShape = array.chunks;
  const yEnd = Math.min(region.y0 + region.height, array.shape[iy]!);
  const xEnd = Math.min(region.x0 + region.width, array.shape[ix]!);
  if (yEnd <= region.y0 || xEnd <= region.x0) return { width: region.width, height: region.height, dtype: image.dtype, data: out };
  const cy0 = Math.floor(region.y0 / chunkShape[iy]!);
  const cy1 = Math.floor((yEnd - 1) / chunkShape[iy]!);
  const cx0 = Math.floor(region.x0 / chunkShape[ix]!);
  const cx1 = Math.floor((xEnd - 1) / chunkShape[ix]!);
  const jobs: Promise<void>[] = [];
  for (let cy = cy0; cy <= cy1; cy++) {
    for (let cx = cx0; cx <= cx1; cx++) {
      const coords = axes.map((a, i) => (a === 'y' ? cy : a === 'x' ? cx : Math.floor(fixed[a]! / chunkShape[i]!)));
      const key = `${cacheKeyPrefix}/${region.level}/${coords.join('.')}`;
      jobs.push(
        (cache.getOrLoad(key, () => array.getChunk(coords)) as Promise<DecodedChunk>).then((chunk) => {
          // Offset of the fixed (t, c, z) position inside the chunk.
          let base = 0;
          axes.forEach((a, i) => {
            if (a !== 'y' && a !== 'x') base += (fixed[a]! - coords[i]! * chunkShape[i]!) * chunk.stride[i]!;
          });
          const sy = chunk.stride[iy]!;
          const sx = chunk.stride[ix]!;
          const chunkY0 = cy * chunkShape[iy]!;
          const chunkX0 = cx * chunkShape[ix]!;
          const ya = Math.max(region.y0, chunkY0);
          const yb = Math.min(yEnd, chunkY0 + chunkShape[iy]!);
          const xa = Math.max(region.x0, chunkX0);
          const xb = Math.min(xEnd, chunkX0 + chunkShape[ix]!);
          const data = chunk.data as PixelArray;
          for (let y = ya; y < yb; y++) {
            const src = base + (y - chunkY0) * sy + (xa - chunkX0) * sx;
            const dst = (y - region.y0) * region.width + (xa - region.x0);
            if (sx === 1) out.set(data.subarray(src, src + (xb - xa)), dst);
            else for (let x = 0; x < xb - xa; x++) out[dst + x] = data[src + x * sx]!;
          }
        }),
      );
    }
  }
  await Promise.all(jobs);
  return { width: region.width, height: region.height, dtype: image.dtype, data: out };
}
