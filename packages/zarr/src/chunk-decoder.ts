import type { DecodedSpan } from './object-store-readable';

/**
 * Decodes whole compressed Zarr chunks of one compressor (blosc-codec.ts, zstd-codec.ts,
 * lz4-codec.ts, deflate-codec.ts; zarr-library.ts puts them in zarrita's codec registry).
 */
export interface ChunkDecoder {
  /** What decodes, for logs: "c-blosc 1.21.3 (libblosc.so.1)", "node:zlib 1.3.0.1-motley (gzip)". */
  readonly description: string;
  /**
   * The chunk's bytes, decoded; throws a message saying what is wrong with a corrupt or truncated
   * chunk, or one that would decode to more than `maxBytes` (refused before anything is allocated
   * where the format declares its size; otherwise decoding stops there). The output goes into
   * `allocate(size)`'s memory when given and the decoder can write into memory it is given (reused
   * memory: no page faults). With `wanted`, only those decoded bytes will be read: a decoder that
   * can decode part of a chunk (Blosc, block by block) may leave the rest unwritten.
   */
  decode(chunk: Uint8Array, maxBytes: number, allocate?: (size: number) => Uint8Array, wanted?: DecodedSpan): Uint8Array;
  /**
   * The bytes a decode of `wanted` writes, where that is more than asked: Blosc decodes whole
   * blocks, and copying all of each costs next to nothing beside its decode (a window of 16 planes
   * of a 64³ uint16 chunk lies in a 32-plane block, whose other half a scroll reads next).
   * Undefined: exactly `wanted`.
   */
  decodedSpan?(chunk: Uint8Array, wanted: DecodedSpan): DecodedSpan | undefined;
}
