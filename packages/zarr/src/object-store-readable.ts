import type { ByteRange, ObjectStore } from '@tilefarm/storage';
import { readBuffer, type ChunkMemory } from './chunk-memory';

/** Bytes `start`..`end` (end excluded) of a chunk once decoded. */
export interface DecodedSpan {
  start: number;
  end: number;
}

/** A span asked for, on its way to the decoder and back. */
export interface WantedSpan extends DecodedSpan {
  /** Written by the decode: what it decoded, where that is more than the span (whole Blosc blocks). */
  decoded?: DecodedSpan;
}

/** What zarrita hands a store's get for a chunk (its getChunk's options, passed through untouched). */
export interface ChunkReadOptions {
  /** zarrita's own option (unused here: reads are not cancelled). */
  signal?: AbortSignal;
  /** Only this span of the chunk, decoded, will be read (zarr-library.ts asks so for windows of planes). */
  wanted?: WantedSpan;
  /** Read into, and decoded into, this memory (its caller gives back what it is handed). */
  memory?: ChunkMemory;
}

/**
 * Chunks read with options, to those options (the span of their decoded bytes that will be read,
 * the memory to decode into): how they reach the chunk's decoder, which zarrita hands the bytes
 * the store returned and nothing else. Keyed by those very bytes, so concurrent reads cannot mix
 * them up. Memory is given only by a caller that gives everything back (a render, through the
 * source cache); reads for anyone else (registration's statistics and copies) take memory of their
 * own, which the collector frees: memory from a pool that is never given back is lost to the pool.
 */
export const chunkReads = new WeakMap<Uint8Array, ChunkReadOptions>();

/** zarrita's store shape (an AsyncReadable of @zarrita/storage), stated here so no module but zarr-library.ts loads zarrita. */
export interface ZarrReadable {
  get(key: `/${string}`, options?: ChunkReadOptions): Promise<Uint8Array | undefined>;
  getRange(key: `/${string}`, range: ByteRange): Promise<Uint8Array | undefined>;
}

/**
 * A Zarr hierarchy under `prefix` of an ObjectStore (local disk or S3), as zarrita reads stores:
 * whole objects for metadata and chunks, byte ranges for shard indexes and the chunks inside shards.
 * Counts reads, so tests and metrics can see that a shard is read by range, not whole.
 */
export class ObjectStoreReadable implements ZarrReadable {
  reads = 0;
  rangeReads = 0;
  bytesRead = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
  ) {}

  private key(path: `/${string}`): string {
    return `${this.prefix}${path.slice(1)}`;
  }

  async get(path: `/${string}`, options?: ChunkReadOptions): Promise<Uint8Array | undefined> {
    this.reads++;
    // Chunks land in reused memory where the caller has some (the codec gives it back once decoded).
    const memory = options?.memory;
    const body = memory && this.store.getInto ? await this.store.getInto(this.key(path), (size) => readBuffer(memory, size)) : await this.store.get(this.key(path));
    this.bytesRead += body?.length ?? 0;
    if (body && options && (options.wanted || memory)) chunkReads.set(body, options);
    return body;
  }

  async getRange(path: `/${string}`, range: ByteRange): Promise<Uint8Array | undefined> {
    this.rangeReads++;
    const body = await this.store.getRange(this.key(path), range);
    this.bytesRead += body?.length ?? 0;
    return body;
  }
}
