/**
 * Memory for Zarr chunks, reused instead of allocated per chunk (the worker's SourceBufferPool is
 * one). Why: a cold tile of a linked Zarr read a compressed chunk, decoded it and copied the tile
 * out, each into fresh memory; at 128 KB-2 MB each, every one was a new mapping whose pages fault in
 * as they are first written, and the garbage they leave took 14 % of the bench's main thread.
 */
export interface ChunkMemory {
  /** A buffer of exactly `size` bytes (contents undefined), at offset 0 of its own ArrayBuffer. */
  allocate(size: number): Buffer;
  /**
   * Memory that renders may still read (a tile handed to one, a chunk the cache drops): reusable
   * once every render in flight now has finished. Ignored unless it came from `allocate`.
   */
  retire(buffer: ArrayBufferLike): void;
  /** Memory only its holder ever saw, done with: reusable at once. Ignored unless it came from `allocate`. */
  recycle(buffer: ArrayBufferLike): void;
}

let processMemory: ChunkMemory | undefined;

/**
 * Where this process's chunk reads (ObjectStoreReadable) and Blosc decodes take their memory from.
 * Safe to set in any process: what this module gives back is only ever memory nobody else can
 * reach (a compressed chunk once decoded, a deep chunk once its planes are copied); memory that
 * others may view is given back by its owner (the source cache, a render's reads).
 */
export function takeChunkMemoryFrom(memory: ChunkMemory | undefined): void {
  processMemory = memory;
}

export function chunkMemory(): ChunkMemory | undefined {
  return processMemory;
}

/**
 * Gives back the buffer under `bytes` if `memory` lent it (a lent buffer has one holder, who sees it
 * from offset 0; anything else is left alone).
 */
export function recycleBuffer(memory: ChunkMemory | undefined, bytes: ArrayBufferView): void {
  if (memory && bytes.byteOffset === 0) memory.recycle(bytes.buffer);
}

/**
 * Compressed chunks differ in size by a few bytes to kilobytes: read into buffers rounded up to
 * this, so a buffer given back fits the next chunk of about the same size (the pool matches sizes
 * exactly). At most this much of each read is unused, and only until its decode.
 */
export const READ_SIZE_STEP = 64 * 1024;

/**
 * `size` bytes at offset 0 of a buffer from `memory` rounded up to READ_SIZE_STEP; metadata
 * documents (a few KB, read when an image is opened) get memory of their own.
 */
export function readBuffer(memory: ChunkMemory, size: number): Buffer {
  if (size < READ_SIZE_STEP / 4) return Buffer.allocUnsafeSlow(size);
  return memory.allocate(Math.ceil(size / READ_SIZE_STEP) * READ_SIZE_STEP).subarray(0, size);
}
