import type { ChunkDecoder } from './chunk-decoder';
// koffi ships types for its ES entry; this CommonJS package requires its CommonJS one (same API).
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'import' } });

const HEADER_BYTES = 4;

/**
 * Decodes whole lz4 chunks as numcodecs' LZ4 codec writes them (Zarr v2's "lz4" compressor, v3's
 * "numcodecs.lz4"): the decoded size as a 4-byte little-endian number, then one LZ4 block. With
 * liblz4, the reference implementation (Debian's liblz4-1, which libblosc1 depends on), called
 * through koffi: no code is generated from strings (numcodecs' wasm glue, zarrita's default, builds
 * functions with `new Function`). Throws, saying why, when the library cannot be loaded.
 */
export function openLiblz4(library = 'liblz4.so.1'): ChunkDecoder {
  const koffi = require('koffi') as Koffi;
  const lib = koffi.load(library);
  const version = lib.func('const char *LZ4_versionString(void)');
  // The safe decoder: never reads past the input or writes past dstCapacity, whatever the input.
  const decompress = lib.func('int LZ4_decompress_safe(const void *src, _Out_ void *dst, int compressedSize, int dstCapacity)');
  const description = `liblz4 ${String(version())} (${library})`;

  return {
    description,
    decode(chunk, maxBytes, allocate) {
      if (chunk.byteLength < HEADER_BYTES) throw new Error(`not an lz4 chunk: ${chunk.byteLength} bytes, less than its ${HEADER_BYTES}-byte size header`);
      const size = Buffer.from(chunk.buffer, chunk.byteOffset, HEADER_BYTES).readUInt32LE(0);
      if (size > maxBytes) throw new Error(`the chunk's lz4 header declares ${size} decoded bytes, more than its ${maxBytes} (chunk shape × sample size)`);
      // Not zero-filled: LZ4 writes every byte it reports, and a size short of the declared one is refused.
      const out = allocate ? allocate(size) : new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
      if (size === 0) return out;
      const written = decompress(chunk.subarray(HEADER_BYTES), out, chunk.byteLength - HEADER_BYTES, size) as number;
      if (written < 0) throw new Error(`liblz4 could not decode the chunk (error ${written}): its block is corrupt or truncated`);
      if (written !== size) throw new Error(`liblz4 decoded ${written} bytes, the chunk's header declares ${size} (truncated)`);
      return out;
    },
  };
}
