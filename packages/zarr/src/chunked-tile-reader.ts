import type { PixelArray, SourceTile } from '@tilefarm/contracts';
import type { NgffImage } from './ngff-image';
import type { DecodedChunk, ZarrArrayHandle } from './zarr-library';

/** Where decoded chunks are kept between tiles (the worker's byte-bounded source cache). */
export interface ChunkCache {
  getOrLoad(key: string, load: () => Promise<DecodedChunk>): Promise<unknown>;
  /** A cache that can also be handed entries (the worker's) keeps deep chunks as a window of planes. */
  set?(key: string, value: DecodedChunk): void;
  has?(key: string): boolean;
}

/**
 * Planes of a chunk deeper than one z slice kept around the z that was asked for: a viewer scrolls
 * through z a few slices at a time, and a 64³ chunk holds 64 of them. Keeping the whole chunk does
 * not fit a byte-bounded cache (a 3×3-tile viewport of 64³ chunks is 144 chunks per channel,
 * 72 MB each at uint16 for two channels) and the LRU then drops every chunk before the next z
 * needs it, so each z decoded all of them again. A window of planes either side of z is a quarter of
 * that, and one decode then serves the next PLANE_WINDOW slices up or down.
 */
export const PLANE_WINDOW = 8;

/** Decodes of whole deep chunks under way, shared by the tiles (and z) that need one (per array). */
const decoding = new WeakMap<ZarrArrayHandle, Map<string, Promise<DecodedChunk>>>();

function decodeShared(array: ZarrArrayHandle, coords: number[]): Promise<DecodedChunk> {
  let pending = decoding.get(array);
  if (!pending) decoding.set(array, (pending = new Map()));
  const key = coords.join('.');
  let p = pending.get(key);
  if (!p) {
    p = array.getChunk(coords);
    pending.set(key, p);
    const forget = () => pending!.delete(key);
    p.then(forget, forget);
  }
  return p;
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

function cStrides(shape: number[]): number[] {
  return shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
}

/** Plane `zi` (index inside the chunk) of a decoded chunk, as a chunk of depth 1 with its own buffer. */
function planeOf(chunk: DecodedChunk, iz: number, zi: number): DecodedChunk {
  const data = chunk.data as PixelArray;
  const shape = chunk.shape.map((n, i) => (i === iz ? 1 : n));
  const stride = cStrides(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  // C order with nothing but size-1 axes outside z (NGFF's t, c, z, y, x chunked per channel): the
  // plane is one contiguous run, copied so the chunk's buffer can go.
  const cOrder = cStrides(chunk.shape).every((s, i) => s === chunk.stride[i] || chunk.shape[i] === 1);
  if (cOrder && chunk.shape.every((s, i) => i >= iz || s === 1)) {
    const start = zi * chunk.stride[iz]!;
    return { data: data.slice(start, start + n), shape, stride };
  }
  // Any other order or layout: gathered element by element into C order.
  const out = new (data.constructor as new (n: number) => PixelArray)(n);
  for (let k = 0; k < n; k++) {
    let rem = k;
    let src = zi * chunk.stride[iz]!;
    for (let i = 0; i < shape.length; i++) {
      const at = Math.floor(rem / stride[i]!);
      rem -= at * stride[i]!;
      src += at * chunk.stride[i]!;
    }
    out[k] = data[src]!;
  }
  return { data: out, shape, stride };
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
  const iz = axes.indexOf('z');
  const deep = iz >= 0 && chunkShape[iz]! > 1 && cache.set !== undefined && cache.has !== undefined;
  const jobs: Promise<void>[] = [];
  for (let cy = cy0; cy <= cy1; cy++) {
    for (let cx = cx0; cx <= cx1; cx++) {
      const coords = axes.map((a, i) => (a === 'y' ? cy : a === 'x' ? cx : Math.floor(fixed[a]! / chunkShape[i]!)));
      const key = `${cacheKeyPrefix}/${region.level}/${coords.join('.')}`;
      let load: Promise<DecodedChunk>;
      // z inside the chunk, for chunks kept as planes (then the cached entry is that plane alone).
      let planeZ = -1;
      if (deep) {
        planeZ = region.z - coords[iz]! * chunkShape[iz]!;
        const planeKey = (zi: number) => `${key}@${zi}`;
        load = cache.getOrLoad(planeKey(planeZ), async () => {
          const chunk = await decodeShared(array, coords);
          const depth = chunkShape[iz]!;
          for (let zi = Math.max(0, planeZ - PLANE_WINDOW); zi <= Math.min(depth - 1, planeZ + PLANE_WINDOW); zi++) {
            if (zi !== planeZ && !cache.has!(planeKey(zi))) cache.set!(planeKey(zi), planeOf(chunk, iz, zi));
          }
          return planeOf(chunk, iz, planeZ);
        }) as Promise<DecodedChunk>;
      } else load = cache.getOrLoad(key, () => array.getChunk(coords)) as Promise<DecodedChunk>;
      jobs.push(
        load.then((chunk) => {
          // Offset of the fixed (t, c, z) position inside the chunk (a kept plane is z = 0 of its own).
          let base = 0;
          axes.forEach((a, i) => {
            if (a !== 'y' && a !== 'x') base += (a === 'z' && planeZ >= 0 ? 0 : fixed[a]! - coords[i]! * chunkShape[i]!) * chunk.stride[i]!;
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
