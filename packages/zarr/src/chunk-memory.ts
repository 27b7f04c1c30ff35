/**
 * Memory for Zarr chunks, reused instead of allocated per chunk (the worker's SourceBufferPool is
 * one). Why: a cold tile of a linked Zarr read a compressed chunk, decoded it and copied the tile
 * out, each into fresh memory; at 128 KB-2 MB each, every one was a new mapping whose pages fault in
 * as they are first written, and the garbage they leave took 14 % of the bench's main thread.
 */
export interface ChunkMemory {
  /**
   * A buffer of exactly `size` bytes (contents undefined). It may share its ArrayBuffer with others:
   * views of it start at its byteOffset.
   */
  allocate(size: number): Buffer;
  /**
   * Memory that renders may still read (a tile handed to one, a chunk the cache drops): reusable
   * once every render in flight now has finished. Ignored unless it came from `allocate`.
   */
  retire(view: ArrayBufferView): void;
  /**
   * Memory only its holder ever saw, done with: reusable at once. Ignored unless `view` starts where
   * a buffer from `allocate` starts (its one holder sees it from there).
   */
  recycle(view: ArrayBufferView): void;
  /** The memory `view` keeps alive (what a cache holding it really holds). */
  bytesBehind(view: ArrayBufferView): number;
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
 * `size` bytes from `memory` for an object read whole (a compressed chunk, given back once decoded);
 * metadata documents (a few KB, read when an image is opened, kept by zarrita) get memory of their own.
 */
export function readBuffer(memory: ChunkMemory, size: number): Buffer {
  if (size < METADATA_BYTES) return Buffer.allocUnsafeSlow(size);
  return memory.allocate(size);
}

/** Reads smaller than this are metadata (or tiny chunks), not worth a span of the pool. */
const METADATA_BYTES = 16 * 1024;
