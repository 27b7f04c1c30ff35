/**
 * Memory for Zarr chunks, reused instead of allocated per chunk (the worker's SourceBufferPool is
 * one), handed down explicitly by whoever gives it all back (ChunkReading.memory, getChunk's
 * `memory`). Why: a cold tile of a linked Zarr read a compressed chunk, decoded it and copied the tile
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
