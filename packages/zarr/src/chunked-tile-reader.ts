import type { PixelArray, SourceTile } from '@tilefarm/contracts';
import type { ChunkMemory } from './chunk-memory';
import type { NgffImage } from './ngff-image';
import type { SharedChunks } from './shared-chunk-files';
import type { DecodedChunk, ZarrArrayHandle } from './zarr-library';

/** Where decoded chunks are kept between tiles (the worker's byte-bounded source cache). */
export interface ChunkCache {
  getOrLoad(key: string, load: () => Promise<DecodedChunk>): Promise<unknown>;
  /** A cache that can also be handed entries (the worker's, byte-bounded) keeps deep chunks as windows of planes (or tiles' stacks of them). */
  set?(key: string, value: DecodedChunk): void;
  has?(key: string): boolean;
  /** Whether a load of the entry is in flight in this process (getOrLoad joins it). */
  loading?(key: string): boolean;
  /** The entry, if held (then counted as getOrLoad counts a hit): read without a promise per chunk. */
  get?(key: string): unknown;
  /** Keeps a window (or stack) nobody asked for yet, apart from what was asked for (LruByteCache.offer), up to `maxOfferBytes`. */
  offer?(key: string, value: DecodedChunk): void;
  readonly maxOfferBytes?: number;
}

/**
 * Planes of a chunk deeper than one z slice are kept in windows of this many, aligned to it (planes
 * 0-15, 16-31, ...), one cache entry per window: a viewer scrolls through z a few slices at a
 * time, and a 64³ chunk holds 64 of them. Keeping the whole chunk does not fit a byte-bounded cache
 * (a 3×3-tile viewport of 64³ chunks is 144 chunks per channel, 72 MB each at uint16 for two
 * channels) and the LRU then drops every chunk before the next z needs it, so each z decoded all of
 * them again. A window is a quarter of that (36 MB for that viewport), and one decode serves every
 * slice of it.
 *
 * Why aligned windows, not planes around the z asked for (until session 7: the 17 planes within 8
 * of it, each its own cache entry): a scroll of 16 slices decoded each chunk twice either way, but
 * a whole scroll through a 64³ chunk took 5 decodes (now 4); each decode copied 17 planes into 17
 * allocations and made 17 cache entries (now one copy into one pooled buffer, one entry); and an
 * aligned window lies in whole Blosc blocks of the usual chunks, which a decoder can decode alone
 * (ZarrArrayHandle.getChunk's `planes`).
 */
export const PLANE_WINDOW = 16;

/** The window of planes (inside the chunk, both ends included) that holds plane `zi` of a chunk `depth` deep. */
export function planeWindow(zi: number, depth: number): { from: number; to: number } {
  const from = zi - (zi % PLANE_WINDOW);
  return { from, to: Math.min(depth, from + PLANE_WINDOW) - 1 };
}

/**
 * Loads of deep-chunk windows in flight in this process at once; the others wait their turn. Why:
 * a chunk's load reads it (a 64³ uint16 chunk with Blosc lz4: ~320 KB), decodes it (512 KB) and
 * copies the window out (128 KB), and from local disk the read is synchronous, so a tile's 16
 * loads per channel all read before the first decodes: with 4 renders in flight, dozens of read
 * and decode buffers were alive at once, more than the worker's pool keeps idle, and half of a
 * bench:zarr 64³ run's 2,000 buffers were fresh memory (page faults as c-blosc wrote them, and the
 * collector's work). A few at a time keep a handful alive, reused from the pool. A few, not one:
 * from S3 each load is a GET whose latency the others overlap.
 */
export const WINDOW_LOADS_IN_FLIGHT = 4;

let windowLoadsInFlight = 0;
const waitingForWindowLoad: (() => void)[] = [];

async function limitedWindowLoad<T>(load: () => Promise<T>): Promise<T> {
  if (windowLoadsInFlight >= WINDOW_LOADS_IN_FLIGHT) await new Promise<void>((resolve) => waitingForWindowLoad.push(resolve));
  else windowLoadsInFlight++;
  try {
    return await load();
  } finally {
    // The slot passes to the next waiter as it is (the count stays), or is given up.
    const next = waitingForWindowLoad.shift();
    if (next) next();
    else windowLoadsInFlight--;
  }
}

/**
 * Offers the cache the other windows a load decoded whole beside the one asked for: a 16-slice
 * scroll that starts inside a 32-plane Blosc block reads the block's other half next, and decoding
 * it again was nearly half of such a bench:zarr 64³ run's decodes (576, now 320). Offered, not
 * stored: offers are kept in bytes of their own and never push out a window that was asked for
 * (with both halves in the LRU, a 3×3 viewport of 64³ chunks needs 72 MB, and a 64 MB cache then
 * dropped each window before its next slice).
 */
function offerWindowMates(cache: ChunkCache, key: string, whole: DecodedChunk, iz: number, depth: number, asked: number, memory: ChunkMemory | undefined, onMate: ((from: number, mate: DecodedChunk) => void) | undefined): void {
  for (const window of mateWindows(whole.decodedPlanes!, depth, asked)) {
    const mateKey = `${key}@${window.from}`;
    if (cache.has?.(mateKey)) continue;
    const mate = windowOf(whole, iz, window.from, window.to, memory);
    cache.offer!(mateKey, mate);
    // The other workers' scrolls read it next as well.
    onMate?.(window.from, mate);
  }
}

/** The whole windows of planes inside the planes a decode yielded, but the one asked for (from `asked`). */
function mateWindows(decoded: { from: number; to: number }, depth: number, asked: number): Array<{ from: number; to: number }> {
  const mates = [];
  for (let start = decoded.from + ((PLANE_WINDOW - (decoded.from % PLANE_WINDOW)) % PLANE_WINDOW); start < depth; start += PLANE_WINDOW) {
    const window = planeWindow(start, depth);
    if (window.to > decoded.to) break;
    if (window.from !== asked) mates.push(window);
  }
  return mates;
}

/** How a tile's chunks are read besides the cache. */
export interface ChunkReading {
  /**
   * Where the read's chunks, their decodes and a tile assembled from several chunks land: only for
   * callers whose read is part of a render holding that memory's ticket, and whose cache gives back
   * what it drops, as the worker's are (see readTileFromChunks). Everything the read takes from it
   * goes back (to the cache, or at once), also when a chunk fails.
   */
  memory?: ChunkMemory;
  /** Decoded chunks the processes of this machine hand each other (shared-chunk-files.ts). */
  shared?: SharedChunks;
  /**
   * Whether a tile's stack this read decodes is shared with them (default true; what they shared is
   * read back either way). False for a render whose job renders the place's other slices itself
   * (a z stack asked at once): the stack is read where it was decoded, and written for nobody.
   */
  shareDecodes?: boolean;
  /** How a chunk's rows are copied into the tile: the worker's C kernel (@tilefarm/render's PixelKernels.copyRows); by default set() per row. */
  copyRows?: CopyRows;
  /**
   * Keeps a tile of deep chunks that lie inside it as its stack of planes (readTileFromStack): for
   * a reader that goes through z and copies rows with a kernel, as the worker does. Not by default:
   * built with set() per row, a 256² stack of 16 planes costs 1.5 ms against 0.08 for the one plane
   * a reader of single planes (the API's /zarr/ view) asks for.
   */
  stacks?: boolean;
}

/** Typed arrays a tile is copied between: the decoded types of every source dtype. */
type ChunkSamples = PixelArray | Int16Array | Uint32Array;

/**
 * `rows` rows of `width` samples from src to dst, arrays of one kind, each at its offset and its
 * stride (in samples). Why a port: a 256² tile over 64³ chunks is 16 chunks of 64 rows per
 * channel, and set() per row (a call and a subarray each) cost 0.1-0.2 ms of a linked 64³ tile's
 * ~2.1 ms of CPU (bench:zarr, docs/benchmarks.md); the worker passes the C kernel, one call per chunk.
 */
export type CopyRows = (dst: ChunkSamples, dstOffset: number, dstStride: number, src: ChunkSamples, srcOffset: number, srcStride: number, width: number, rows: number) => void;

export const copyRowsBySet: CopyRows = (dst, dstOffset, dstStride, src, srcOffset, srcStride, width, rows) => {
  for (let r = 0; r < rows; r++) {
    const from = srcOffset + r * srcStride;
    dst.set(src.subarray(from, from + width) as never, dstOffset + r * dstStride);
  }
};

/** The typed array a source type decodes to (zarrita's choice, both spellings). */
const DECODED: Record<string, { new (buffer: ArrayBuffer, offset: number, length: number): PixelArray | Int16Array | Uint32Array; BYTES_PER_ELEMENT: number }> = {
  uint8: Uint8Array, '|u1': Uint8Array, uint16: Uint16Array, '<u2': Uint16Array, int16: Int16Array, '<i2': Int16Array, uint32: Uint32Array, '<u4': Uint32Array, float32: Float32Array, '<f4': Float32Array,
};

/**
 * A tile's stack of one channel (readTileFromStack) is shared as one entry; where its deep chunks
 * reach into other tiles, its windows of them (C order: windowOf makes them so), their bytes one
 * after the other in the tile's chunk order. Only deep chunks' windows are shared: the
 * slices of a 64³ chunk go to both workers, and each decoded whole Blosc blocks for one window of
 * them. Chunks of one plane were shared too at first: a 1024² chunk (2 MB) written and read back
 * cost about what its decode does, and bench:zarr's plane-by-plane 1024² rounds were slower with it
 * (0.63, 0.63 of the copied source against 0.75, 0.88 without, session 13).
 *
 * Why a tile's windows, not each window (until session 18): a 256² tile over 64³ chunks is 16
 * windows per channel, and each window shared cost its own claim file, arena write, symbolic link
 * and rename, and each read back its own lstat, readlink and reads: about 60 file-system calls per
 * tile, a third of the extra CPU a plane-by-plane 64³ tile cost the workers end to end (bench:zarr,
 * session 17's profile). A viewer asks for the same tile place through z, so the group recurs (and
 * since session 20 it is one stack of the tile's planes).
 */
function bytesOf(chunk: DecodedChunk): Uint8Array {
  const data = chunk.data as unknown as ArrayBufferView;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * How long a worker waits for another's decode of a tile's windows before it decodes them too: 16
 * windows of 64³ chunks take a few milliseconds, more on a loaded machine (it was 50 ms for one).
 */
export const SHARED_WAIT_MS = 100;

/** Where a tile's pixels come from in one chunk (or window of its planes), before it is loaded. */
interface ChunkPlace {
  coords: number[];
  /** Its key in the cache: the chunk's, or its window's. */
  cacheKey: string;
  /** The chunk's key, without a window. */
  chunkKey: string;
  /** z inside the cached entry, for chunks kept as windows of planes (-1: the entry is the whole chunk). */
  planeZ: number;
  cy: number;
  cx: number;
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

const TYPED = { uint8: Uint8Array, uint16: Uint16Array, float32: Float32Array } as const;

/** A tile's samples: zero-filled fresh memory, or reused memory of any contents. */
function allocate(dtype: NgffImage['dtype'], n: number, memory: ChunkMemory | undefined): PixelArray {
  const Typed = TYPED[dtype];
  if (!memory) return new Typed(n);
  const bytes = memory.allocate(n * Typed.BYTES_PER_ELEMENT);
  return new Typed(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
}

function cStrides(shape: number[]): number[] {
  return shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
}

/**
 * Planes `from`..`to` of axis `iz` of a decoded chunk, as a chunk of their own (C order), in
 * `memory` where given: a window the cache keeps, given back by the cache when it drops it.
 */
function windowOf(chunk: DecodedChunk, iz: number, from: number, to: number, memory: ChunkMemory | undefined): DecodedChunk {
  const data = chunk.data as PixelArray;
  const shape = chunk.shape.map((n, i) => (i === iz ? to - from + 1 : n));
  const stride = cStrides(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const Typed = data.constructor as { new (n: number): PixelArray; new (buffer: ArrayBuffer, offset: number, length: number): PixelArray; BYTES_PER_ELEMENT: number };
  const bytes = memory?.allocate(n * Typed.BYTES_PER_ELEMENT);
  const out = bytes ? new Typed(bytes.buffer as ArrayBuffer, bytes.byteOffset, n) : new Typed(n);
  // C order with nothing but size-1 axes outside z (NGFF's t, c, z, y, x chunked per channel): the
  // planes are one contiguous run.
  const cOrder = cStrides(chunk.shape).every((s, i) => s === chunk.stride[i] || chunk.shape[i] === 1);
  if (cOrder && chunk.shape.every((s, i) => i >= iz || s === 1)) {
    const start = from * chunk.stride[iz]!;
    out.set(data.subarray(start, start + n));
    return { data: out, shape, stride };
  }
  // Any other order or layout: gathered element by element into C order.
  for (let k = 0; k < n; k++) {
    let rem = k;
    let src = from * chunk.stride[iz]!;
    for (let i = 0; i < shape.length; i++) {
      const at = Math.floor(rem / stride[i]!);
      rem -= at * stride[i]!;
      src += at * chunk.stride[i]!;
    }
    out[k] = data[src]!;
  }
  return { data: out, shape, stride };
}

/** A tile's place on the chunk grid of its level, and what it needs of every chunk it overlaps. */
interface TileGrid {
  image: NgffImage;
  array: ZarrArrayHandle;
  region: TileRegion;
  iy: number;
  ix: number;
  iz: number;
  /** The tile's end in the level array (y, x), cut at the array's edge. */
  yEnd: number;
  xEnd: number;
  /** Chunk-grid rows and columns the tile overlaps, both ends included. */
  cy0: number;
  cy1: number;
  cx0: number;
  cx1: number;
  /** Every pixel of the tile lies in the array: the chunks overlapping it write all of them. */
  covered: boolean;
}

/** The coordinates of the chunk at chunk-grid (cy, cx) holding the tile's t, c and z. */
function chunkCoords(grid: TileGrid, cy: number, cx: number): number[] {
  const { image, array, region } = grid;
  const fixed = { t: region.t, c: region.c, z: region.z };
  return image.axes.map((a, i) => (a === 'y' ? cy : a === 'x' ? cx : Math.floor(fixed[a as 't' | 'c' | 'z'] / array.chunks[i]!)));
}

/**
 * Where the tile's pixels lie in a loaded chunk at chunk-grid (cy, cx): `planeZ` is z inside the
 * entry for windows of planes, -1 for an entry that is the whole chunk (the tile's z then).
 */
function placeIn(grid: TileGrid, chunk: DecodedChunk, coords: number[], planeZ: number, cy: number, cx: number) {
  const { image, array, region, iy, ix } = grid;
  const chunkShape = array.chunks;
  const fixed = { t: region.t, c: region.c, z: region.z };
  // Offset of the fixed (t, c, z) position inside the chunk (or the window of planes kept).
  let base = 0;
  image.axes.forEach((a, i) => {
    if (a !== 'y' && a !== 'x') base += (a === 'z' && planeZ >= 0 ? planeZ : fixed[a as 't' | 'c' | 'z'] - coords[i]! * chunkShape[i]!) * chunk.stride[i]!;
  });
  return { base, sy: chunk.stride[iy]!, sx: chunk.stride[ix]!, chunkY0: cy * chunkShape[iy]!, chunkX0: cx * chunkShape[ix]!, data: chunk.data as PixelArray };
}

/**
 * Copies the tile's part of a loaded chunk (see placeIn) into `out`, whose tile starts at
 * `outOffset`; with `planes`, that many consecutive planes from `planeZ` into consecutive tiles of
 * `out` (a stack), the chunk's place worked out once.
 */
function copyFromChunk(grid: TileGrid, out: PixelArray, outOffset: number, chunk: DecodedChunk, coords: number[], planeZ: number, cy: number, cx: number, copyRows: CopyRows, planes = 1): void {
  const { region, array, iy, ix, iz } = grid;
  const { base, sy, sx, chunkY0, chunkX0, data } = placeIn(grid, chunk, coords, planeZ, cy, cx);
  const ya = Math.max(region.y0, chunkY0);
  const yb = Math.min(grid.yEnd, chunkY0 + array.chunks[iy]!);
  const xa = Math.max(region.x0, chunkX0);
  const xb = Math.min(grid.xEnd, chunkX0 + array.chunks[ix]!);
  const n = region.width * region.height;
  for (let p = 0; p < planes; p++) {
    const src = base + p * (planes > 1 ? chunk.stride[iz]! : 0) + (ya - chunkY0) * sy + (xa - chunkX0) * sx;
    const dst = outOffset + p * n + (ya - region.y0) * region.width + (xa - region.x0);
    // Rows of one array kind (a tile and its chunks of one dtype, as they always are): one call per chunk and plane.
    if (sx === 1 && data.constructor === out.constructor) copyRows(out, dst, region.width, data, src, sy, xb - xa, yb - ya);
    else for (let y = 0; y < yb - ya; y++) for (let x = 0; x < xb - xa; x++) out[dst + y * region.width + x] = data[src + y * sy + x * sx]!;
  }
}

/**
 * Whether every chunk the tile overlaps lies inside the tile, up to the array's edge: true of the
 * tiles of the manifest's grid over chunks that divide the tile size (64³ chunks under 256²
 * tiles), false where a chunk reaches into another tile (larger than a tile, or not dividing it).
 */
function chunksInsideTile(region: TileRegion, array: ZarrArrayHandle, iy: number, ix: number): boolean {
  const inside = (start: number, length: number, chunk: number, end: number) => start % chunk === 0 && (length % chunk === 0 || start + length >= end);
  return inside(region.y0, region.height, array.chunks[iy]!, array.shape[iy]!) && inside(region.x0, region.width, array.chunks[ix]!, array.shape[ix]!);
}

/**
 * A tile is assembled from the chunks it overlaps: a chunk may be larger than a tile (1024²: many
 * tiles share it, hence the cache), smaller (64³), or hold several z slices. Missing chunks are the
 * fill value (zarrita decodes them so); pixels past a level array's edge (a level rounded down
 * where our pyramid rounds up) are the fill value too.
 *
 * A tile that is exactly one chunk's plane (chunks of the tile's size on the tile grid) is a view of
 * the chunk's samples, not a copy: it was read into memory, decoded into more and copied into a
 * third, for one tile. Renderers only read their sources, and the chunk's memory is given back only
 * by its owner (the cache, once it drops the chunk; reused only after the renders in flight then).
 * The same holds for a tile of deep chunks that lie inside it, read with `reading.stacks`: a view of
 * the tile's stack (see readTileFromStack). With `reading.memory`, a tile assembled from several chunks lands in reused
 * memory, retired as it is handed over: reused once that render and every older one are done. With
 * `reading.shared`, deep chunks another worker of the machine decoded are read back, not decoded
 * again; `reading.copyRows` copies each chunk's rows into the tile.
 */
export async function readTileFromChunks(image: NgffImage, arrays: ZarrArrayHandle[], region: TileRegion, cache: ChunkCache, cacheKeyPrefix: string, reading: ChunkReading = {}): Promise<SourceTile> {
  const array = arrays[region.level];
  if (!array) throw new RangeError(`level ${region.level} is not in this image`);
  const { axes } = image;
  const iy = axes.indexOf('y');
  const ix = axes.indexOf('x');
  const iz = axes.indexOf('z');
  const chunkShape = array.chunks;
  const yEnd = Math.min(region.y0 + region.height, array.shape[iy]!);
  const xEnd = Math.min(region.x0 + region.width, array.shape[ix]!);
  if (yEnd <= region.y0 || xEnd <= region.x0) {
    const out = allocate(image.dtype, region.width * region.height, undefined);
    if (image.fillValue !== 0) out.fill(image.fillValue);
    return { width: region.width, height: region.height, dtype: image.dtype, data: out };
  }
  const grid: TileGrid = {
    image, array, region, iy, ix, iz, yEnd, xEnd,
    cy0: Math.floor(region.y0 / chunkShape[iy]!),
    cy1: Math.floor((yEnd - 1) / chunkShape[iy]!),
    cx0: Math.floor(region.x0 / chunkShape[ix]!),
    cx1: Math.floor((xEnd - 1) / chunkShape[ix]!),
    covered: yEnd === region.y0 + region.height && xEnd === region.x0 + region.width,
  };
  const deep = iz >= 0 && chunkShape[iz]! > 1 && cache.set !== undefined && cache.has !== undefined;
  if (deep && reading.stacks && chunksInsideTile(region, array, iy, ix)) return readTileFromStack(grid, cache, cacheKeyPrefix, reading);
  return readTileFromChunkEntries(grid, deep, cache, cacheKeyPrefix, reading);
}

/**
 * A tile of deep chunks that lie inside it (64³ chunks under a 256² tile: 16 of them) is a plane of
 * the tile's stack: the tile's planes of one window of PLANE_WINDOW (aligned to the chunks, as for
 * windows of a chunk), one cache entry, each plane exactly the tile. Why (session 20): kept as one
 * window per chunk, each read of such a tile looked up 16 entries and copied 16 × 64 rows out of
 * them, with a key, a closure and a promise per chunk, and every decode first copied its window out
 * of the decoded block: CPU profiles of bench:zarr 64³ put those at 0.33 ms of a tile's main-thread
 * time in process and 0.41 end to end (docs/benchmarks.md). Now a decode copies its planes straight into the stack, and a tile is
 * a view of it: one lookup, no copy. The chunks belong to no other tile, so none is decoded for two.
 * A stack is shared with the machine's other workers as one entry, as a tile's windows were; they
 * read back only the planes they render of it (SharedTileWindows.readPlane).
 */
async function readTileFromStack(grid: TileGrid, cache: ChunkCache, cacheKeyPrefix: string, reading: ChunkReading): Promise<SourceTile> {
  const { image, array, region, iz } = grid;
  const depth = array.chunks[iz]!;
  const chunkZ0 = Math.floor(region.z / depth) * depth;
  const window = planeWindow(region.z - chunkZ0, depth);
  const n = region.width * region.height;
  const first = chunkCoords(grid, grid.cy0, grid.cx0);
  // The grid's first and last chunk name the stack (a ":stack" of its own: a tile's windows were once shared under the bare name).
  const stackKey = (from: number) => `${cacheKeyPrefix}/${region.level}/${first.join('.')}+${grid.cy1}.${grid.cx1}:stack@${from}`;
  const key = stackKey(window.from);
  const planeOf = (stack: DecodedChunk): SourceTile => {
    const at = (region.z - chunkZ0 - window.from) * n;
    return { width: region.width, height: region.height, dtype: image.dtype, data: (stack.data as PixelArray).subarray(at, at + n) };
  };
  // Held (nearly always, through a scroll): read without a promise.
  if (cache.get && cache.has!(key)) return planeOf(cache.get(key) as DecodedChunk);
  const planeIndex = region.z - chunkZ0 - window.from;
  const planeKey = `${key}#${planeIndex}`;
  const tileOf = (plane: DecodedChunk): SourceTile => ({ width: region.width, height: region.height, dtype: image.dtype, data: plane.data as PixelArray });
  if (cache.get && cache.has!(planeKey)) return tileOf(cache.get(planeKey) as DecodedChunk);
  const shape = [window.to - window.from + 1, region.height, region.width];
  // Not while this process loads it (another render of the tile's place, a prefetched z): its own
  // claim would make this render wait for the other's write, then read back what its cache holds.
  const group = reading.shared && !cache.loading?.(key) ? new SharedTileWindows(reading.shared, stackKey, window.from, [key], shape, TYPED[image.dtype], reading.memory) : undefined;
  // Another worker's stack: only the plane asked for is read back (see SharedTileWindows.readPlane).
  const plane = group?.readPlane(cache, planeKey, planeIndex);
  if (plane) return tileOf(plane);
  // Not there to read (the plane would have been): claimed without reading the stack whole again.
  // Not awaited unless another process holds the claim: a load this process starts is in the
  // cache's loads in flight before any other render of the stack looks (cache.loading).
  const claimed = group && reading.shareDecodes !== false ? group.claimOrWait(cache) : false;
  const sharing = typeof claimed === 'boolean' ? claimed : await claimed;
  try {
    const stack = (await cache.getOrLoad(key, () => decodeStack(grid, window, stackKey, cache, reading.copyRows ?? copyRowsBySet, sharing ? group : undefined, reading.memory))) as DecodedChunk;
    return planeOf(stack);
  } finally {
    if (sharing) group!.release();
  }
}

/**
 * Reads and decodes the tile's chunks for a window of planes, each copied into the tile's stack as
 * it is decoded; the other windows a decode yields whole (a Blosc block's other half) become stacks
 * too, offered to the cache (and shared) when every chunk gave its part.
 */
async function decodeStack(grid: TileGrid, window: { from: number; to: number }, stackKey: (from: number) => string, cache: ChunkCache, copyRows: CopyRows, group: SharedTileWindows | undefined, memory: ChunkMemory | undefined): Promise<DecodedChunk> {
  const { image, array, region, iz } = grid;
  const n = region.width * region.height;
  const depth = array.chunks[iz]!;
  const newStack = (planes: number): DecodedChunk => {
    const data = allocate(image.dtype, planes * n, memory);
    // Fresh memory is zeros already; reused memory holds anything.
    if (!grid.covered && (memory || image.fillValue !== 0)) data.fill(image.fillValue);
    return { data, shape: [planes, region.height, region.width], stride: [n, region.width, 1] };
  };
  const copyPlanes = (into: DecodedChunk, from: number, whole: DecodedChunk, coords: number[], cy: number, cx: number) => copyFromChunk(grid, into.data as PixelArray, 0, whole, coords, from, cy, cx, copyRows, into.shape[0]!);
  const stack = newStack(window.to - window.from + 1);
  const readAhead = cache.offer !== undefined && (cache.maxOfferBytes ?? 0) > 0;
  // Per window of planes beside the one asked for: its stack being filled, or null when the cache holds it already.
  const mates = new Map<number, { stack: DecodedChunk; parts: number } | null>();
  const loads: Promise<void>[] = [];
  for (let cy = grid.cy0; cy <= grid.cy1; cy++) {
    for (let cx = grid.cx0; cx <= grid.cx1; cx++) {
      const coords = chunkCoords(grid, cy, cx);
      loads.push(limitedWindowLoad(async () => {
        const whole = await array.getChunk(coords, { axis: iz, from: window.from, to: window.to }, memory);
        // Only this load ever sees the whole chunk: its memory goes back once its planes are copied out.
        try {
          copyPlanes(stack, window.from, whole, coords, cy, cx);
          if (!readAhead || !whole.decodedPlanes) return;
          for (const mate of mateWindows(whole.decodedPlanes, depth, window.from)) {
            let held = mates.get(mate.from);
            if (held === undefined) mates.set(mate.from, (held = cache.has!(stackKey(mate.from)) ? null : { stack: newStack(mate.to - mate.from + 1), parts: 0 }));
            if (held === null) continue;
            copyPlanes(held.stack, mate.from, whole, coords, cy, cx);
            held.parts++;
          }
        } finally {
          memory?.recycle(whole.data as PixelArray);
        }
      }));
    }
  }
  // Every load settled first: had a chunk failed, others might still be writing into the stacks.
  const failed = (await Promise.allSettled(loads)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    memory?.recycle(stack.data as PixelArray);
    for (const mate of mates.values()) if (mate) memory?.recycle(mate.stack.data as PixelArray);
    throw failed.reason;
  }
  const whole = new Map<number, DecodedChunk>();
  for (const [from, mate] of mates) {
    if (mate === null) continue;
    if (mate.parts === loads.length) whole.set(from, mate.stack);
    else memory?.recycle(mate.stack.data as PixelArray);
  }
  // Shared before offered: an offer the cache does not keep gives its memory back.
  group?.share([stack], new Map([...whole].map(([from, mate]) => [from, [mate]])));
  for (const [from, mate] of whole) cache.offer!(stackKey(from), mate);
  return stack;
}

/**
 * A tile read chunk by chunk, each chunk (or window of its planes, `deep`) one cache entry: chunks
 * of one plane, and deep chunks that reach into other tiles.
 */
async function readTileFromChunkEntries(grid: TileGrid, deep: boolean, cache: ChunkCache, cacheKeyPrefix: string, reading: ChunkReading): Promise<SourceTile> {
  const { memory, copyRows = copyRowsBySet } = reading;
  const { image, array, region, iy, ix, iz, covered } = grid;
  const chunkShape = array.chunks;
  const n = region.width * region.height;
  const tileOf = (data: PixelArray): SourceTile => ({ width: region.width, height: region.height, dtype: image.dtype, data });

  /**
   * The cached entry itself when the cache holds it, else its load: a 256² tile over 64³ chunks
   * reads 16 chunks per channel, nearly always held, and a promise and a callback for each was
   * work for nothing.
   */
  const held = (key: string, load: () => Promise<DecodedChunk>): DecodedChunk | Promise<DecodedChunk> => {
    if (cache.get && cache.has?.(key)) return cache.get(key) as DecodedChunk;
    return cache.getOrLoad(key, load) as Promise<DecodedChunk>;
  };

  const places: ChunkPlace[] = [];
  // The window of planes a deep chunk is read in: one z, so the same for every chunk of the tile.
  let window: { from: number; to: number } | undefined;
  for (let cy = grid.cy0; cy <= grid.cy1; cy++) {
    for (let cx = grid.cx0; cx <= grid.cx1; cx++) {
      const coords = chunkCoords(grid, cy, cx);
      const chunkKey = `${cacheKeyPrefix}/${region.level}/${coords.join('.')}`;
      if (!deep) {
        places.push({ coords, cacheKey: chunkKey, chunkKey, planeZ: -1, cy, cx });
        continue;
      }
      const inChunk = region.z - coords[iz]! * chunkShape[iz]!;
      window ??= planeWindow(inChunk, chunkShape[iz]!);
      places.push({ coords, cacheKey: `${chunkKey}@${window.from}`, chunkKey, planeZ: inChunk - window.from, cy, cx });
    }
  }

  // Windows this machine's other workers decoded are read back; else this process may decode and share them.
  const Typed = DECODED[array.dtype];
  const first = places[0]!;
  const last = places[places.length - 1]!;
  const groupKey = (from: number) => `${first.chunkKey}+${last.cy}.${last.cx}@${from}`;
  const group = deep && reading.shared && Typed && places.some((p) => !cache.has!(p.cacheKey)) ? new SharedTileWindows(reading.shared, groupKey, window!.from, places.map((p) => p.cacheKey), chunkShape.map((d, i) => (i === iz ? window!.to - window!.from + 1 : d)), Typed, memory) : undefined;
  const sharing = group ? await group.readBackOrClaim(cache) : false;
  const mates = new Map<number, Array<DecodedChunk | undefined>>();
  const loads = places.map((place, i) => {
    const { coords, chunkKey } = place;
    const loadWindow = ({ from, to }: { from: number; to: number }) => limitedWindowLoad(async () => {
      const whole = await array.getChunk(coords, { axis: iz, from, to }, memory);
      // Only this load ever sees the whole chunk: its memory goes back once the windows are copied out.
      try {
        // Windows beside this one that the decode yields go to the cache, and where this process shares the tile's, with them.
        const onMate = sharing ? (mateFrom: number, mate: DecodedChunk) => {
          const windows = mates.get(mateFrom) ?? new Array<DecodedChunk | undefined>(places.length).fill(undefined);
          windows[i] = mate;
          mates.set(mateFrom, windows);
        } : undefined;
        if (whole.decodedPlanes && cache.offer && (cache.maxOfferBytes ?? 0) > 0) offerWindowMates(cache, chunkKey, whole, iz, chunkShape[iz]!, from, memory, onMate);
        return windowOf(whole, iz, from, to, memory);
      } finally {
        memory?.recycle(whole.data as PixelArray);
      }
    });
    return { ...place, chunk: held(place.cacheKey, window ? () => loadWindow(window!) : () => array.getChunk(coords, undefined, memory)) };
  });
  try {
    return await assemble(loads, sharing ? (windows) => group!.share(windows, mates) : undefined);
  } finally {
    if (sharing) group!.release();
  }

  /** The tile from its chunks' loads; `loaded` is handed every chunk once all are in. */
  async function assemble(loads: Array<ChunkPlace & { chunk: DecodedChunk | Promise<DecodedChunk> }>, loaded: ((chunks: DecodedChunk[]) => void) | undefined): Promise<SourceTile> {
    const chunks: DecodedChunk[] = [];
    if (loads.length === 1 && covered) {
      const only = loads[0]!;
      const chunk = await only.chunk;
      loaded?.([chunk]);
      const at = placeIn(grid, chunk, only.coords, only.planeZ, only.cy, only.cx);
      // The chunk's plane is the tile, row for row, in the tile's sample type.
      if (at.chunkY0 === region.y0 && at.chunkX0 === region.x0 && chunkShape[iy] === region.height && chunkShape[ix] === region.width && at.sx === 1 && at.sy === region.width && at.data instanceof TYPED[image.dtype]) {
        return tileOf(at.data.subarray(at.base, at.base + n));
      }
    }

    const out = allocate(image.dtype, n, memory);
    // Fresh memory is zeros already; reused memory holds anything.
    if (!covered && (memory || image.fillValue !== 0)) out.fill(image.fillValue);
    const pending: Promise<void>[] = [];
    loads.forEach(({ coords, planeZ, cy, cx, chunk }, i) => {
      if (chunk instanceof Promise) pending.push(chunk.then((c) => copyFromChunk(grid, out, 0, (chunks[i] = c), coords, planeZ, cy, cx, copyRows)));
      else copyFromChunk(grid, out, 0, (chunks[i] = chunk), coords, planeZ, cy, cx, copyRows);
    });
    // Every copy settled first: had a chunk failed, others might still be writing into the tile.
    const failed = pending.length > 0 ? (await Promise.allSettled(pending)).find((r): r is PromiseRejectedResult => r.status === 'rejected') : undefined;
    // Retired, not recycled: the render reading the tile holds the memory's ticket.
    memory?.retire(out);
    if (failed) throw failed.reason;
    if (loads.length > 1 || !covered) loaded?.(chunks);
    return tileOf(out);
  }
}

/**
 * A tile's windows of one channel (or its stack) in the machine's shared chunks (see bytesOf): read
 * back, claimed, written. Entries of `shape` each, in the order of `cacheKeys` (a tile's windows:
 * the chunk grid's, row by row); `keyOf(from)` names them with planes from `from`.
 */
class SharedTileWindows {
  private readonly samples: number;
  private readonly stride: number[];

  constructor(
    private readonly shared: SharedChunks,
    private readonly keyOf: (from: number) => string,
    private readonly from: number,
    private readonly cacheKeys: string[],
    private readonly shape: number[],
    private readonly Typed: (typeof DECODED)[string],
    private readonly memory: ChunkMemory | undefined,
  ) {
    this.samples = shape.reduce((a, b) => a * b, 1);
    this.stride = cStrides(shape);
  }

  /**
   * Puts the tile's windows into `cache` from the shared chunks when another process (or this one)
   * shared them. Else true when this process claimed them (it decodes, shares with `share`, then
   * `release`s), false when another process is decoding them and did not share them within
   * SHARED_WAIT_MS (they are decoded here too, and not shared). Answered at once, without a
   * promise, unless another process holds the claim.
   */
  readBackOrClaim(cache: ChunkCache): boolean | Promise<false> {
    if (this.readBack(cache)) return false;
    return this.claimOrWait(cache);
  }

  /** readBackOrClaim for a caller that found nothing to read back just before (claim re-checks). */
  claimOrWait(cache: ChunkCache): boolean | Promise<false> {
    if (this.shared.claim(this.keyOf(this.from)) === 'mine') return true;
    return this.waitForOthers(cache);
  }

  private async waitForOthers(cache: ChunkCache): Promise<false> {
    for (const start = Date.now(); Date.now() - start < SHARED_WAIT_MS; ) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (this.readBack(cache)) return false;
    }
    return false;
  }

  private readBack(cache: ChunkCache): boolean {
    const { memory } = this;
    const bytes = this.samples * this.Typed.BYTES_PER_ELEMENT;
    const buffers = this.cacheKeys.map(() => (memory ? memory.allocate(bytes) : Buffer.allocUnsafeSlow(bytes)));
    const read = this.shared.read(this.keyOf(this.from), buffers);
    this.cacheKeys.forEach((cacheKey, i) => {
      const buffer = buffers[i]!;
      // Read, and not held by now (one held already is its decoder's, in use): the cache owns it from here.
      if (read && !cache.has!(cacheKey)) cache.set!(cacheKey, { data: new this.Typed(buffer.buffer as ArrayBuffer, buffer.byteOffset, this.samples) as unknown as DecodedChunk['data'], shape: this.shape, stride: this.stride });
      else memory?.recycle(buffer);
    });
    return read;
  }

  /**
   * One plane (`index`) of a stack another process shared, read back into memory of its own and
   * kept in `cache` under `planeKey`; undefined when it is not there. Why not the whole stack: the
   * workers take a viewer's tiles as they come free, so each renders about half of a tile place's
   * slices, and read back whole, every stack (2 MB a channel for 16 planes of 256²) crossed to the
   * other worker for the few planes it renders: bench:zarr's 64³ plane-by-plane rounds read back
   * 64 stacks (128 MB) a round, half of them into fresh memory, for the few planes used.
   */
  readPlane(cache: ChunkCache, planeKey: string, index: number): DecodedChunk | undefined {
    // Only a stack (one entry of planes × height × width) has planes to read apart.
    if (this.cacheKeys.length !== 1 || this.shape.length !== 3) return undefined;
    const [planes, height, width] = this.shape as [number, number, number];
    const samples = height * width;
    const bytes = samples * this.Typed.BYTES_PER_ELEMENT;
    const { memory } = this;
    const buffer = memory ? memory.allocate(bytes) : Buffer.allocUnsafeSlow(bytes);
    if (!this.shared.readPart(this.keyOf(this.from), buffer, index * bytes, planes * bytes)) {
      memory?.recycle(buffer);
      return undefined;
    }
    const plane: DecodedChunk = { data: new this.Typed(buffer.buffer as ArrayBuffer, buffer.byteOffset, samples) as unknown as DecodedChunk['data'], shape: [1, height, width], stride: [samples, width, 1] };
    cache.set!(planeKey, plane);
    return plane;
  }

  /**
   * Shares the tile's windows, and the windows of the planes beside them that its decodes offered
   * to the cache (a Blosc block's other half), where it has one for every place.
   */
  share(windows: DecodedChunk[], mates: ReadonlyMap<number, Array<DecodedChunk | undefined>>): void {
    const write = (from: number, parts: Array<DecodedChunk | undefined>) => {
      const views = parts.map((p) => p && bytesOf(p));
      // One window for every place, all of one size: else nothing (a reader could not split it).
      if (views.length === this.cacheKeys.length && views.every((v) => v !== undefined && v.byteLength === views[0]!.byteLength)) this.shared.write(this.keyOf(from), views as Uint8Array[]);
    };
    write(this.from, windows);
    for (const [from, parts] of mates) write(from, parts);
  }

  release(): void {
    this.shared.release(this.keyOf(this.from));
  }
}
