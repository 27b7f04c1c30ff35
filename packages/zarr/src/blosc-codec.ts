import type { ChunkDecoder } from './chunk-decoder';
import type { DecodedSpan } from './object-store-readable';
// koffi ships types for its ES entry; this CommonJS package requires its CommonJS one (same API).
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'import' } });

/** Blosc 1's fixed header: version, versionlz, flags, typesize, then nbytes, blocksize, cbytes (uint32 LE). */
const HEADER_BYTES = 16;

/**
 * Decodes whole Blosc chunks (the Blosc 1 container Zarr's blosc codec writes) with
 * c-blosc, the reference implementation (Debian's libblosc1), called through koffi. Loaded by this
 * module only, which only processes that decode Zarr chunks import. Throws, saying why, when the
 * library cannot be loaded.
 */
export function openCBlosc(library = 'libblosc.so.1'): ChunkDecoder {
  const koffi = require('koffi') as Koffi;
  const lib = koffi.load(library);
  const version = lib.func('const char *blosc_get_version_string(void)');
  // The context API: no global state, no lock, safe from any thread; 1 internal thread (the
  // worker's concurrency already fills the cores).
  const decompress = lib.func('int blosc_decompress_ctx(const void *src, _Out_ void *dest, size_t destsize, int numinternalthreads)');
  // Checks the header's compressed size against the bytes we have and returns the decoded size.
  const validate = lib.func('int blosc_cbuffer_validate(const void *cbuffer, size_t cbytes, _Out_ size_t *nbytes)');
  const sizes = lib.func('void blosc_cbuffer_sizes(const void *cbuffer, _Out_ size_t *nbytes, _Out_ size_t *cbytes, _Out_ size_t *blocksize)');
  // Items (of the header's typesize) start..start+nitems, decoding only the Blosc blocks that hold
  // them: a window of 16 planes of a 64³ uint16 chunk is one of its two 256 KB blocks. Reads
  // block offsets from the header like blosc_decompress_ctx, so only after the same validation.
  const getitem = lib.func('int blosc_getitem(const void *src, int start, int nitems, _Out_ void *dest)');
  const description = `c-blosc ${String(version())} (${library})`;

  /** `wanted` widened to the Blosc blocks holding it (the header's blocksize, bytes 8-11); undefined for a chunk too short to have one. */
  // Read straight from the bytes: it runs twice per window load (the decode, then decodedSpan).
  const uint32At = (bytes: Uint8Array, at: number) => (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 2 ** 24;
  const blocksOf = (chunk: Uint8Array, wanted: DecodedSpan): DecodedSpan | undefined => {
    if (chunk.byteLength < HEADER_BYTES) return undefined;
    const size = uint32At(chunk, 4);
    const block = uint32At(chunk, 8);
    if (block === 0 || wanted.start < 0 || wanted.end > size || wanted.start >= wanted.end) return undefined;
    return { start: wanted.start - (wanted.start % block), end: Math.min(size, Math.ceil(wanted.end / block) * block) };
  };

  return {
    description,
    decodedSpan: blocksOf,
    decode(chunk, maxBytes, allocate, asked) {
      if (chunk.byteLength < HEADER_BYTES) throw new Error(`not a Blosc chunk: ${chunk.byteLength} bytes, less than Blosc's ${HEADER_BYTES}-byte header`);
      const nbytes = [0];
      if (validate(chunk, chunk.byteLength, nbytes) !== 0) {
        const declared = [0];
        sizes(chunk, [0], declared, [0]);
        throw new Error(`not a whole Blosc chunk: its header declares ${Number(declared[0])} compressed bytes, the chunk has ${chunk.byteLength} (truncated, or not Blosc)`);
      }
      const size = Number(nbytes[0]);
      if (size > maxBytes) throw new Error(`the chunk's Blosc header declares ${size} decoded bytes, more than its ${maxBytes} (chunk shape × sample size)`);
      // Not zero-filled: c-blosc writes every byte or the chunk is refused (zero-filling doubled the cost of a 256² chunk).
      const out = allocate ? allocate(size) : new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
      if (size === 0) return out;
      const typesize = chunk[3]!;
      // Whole blocks: getitem decodes each block it touches in full anyway.
      const wanted = asked && blocksOf(chunk, asked);
      if (wanted && wanted.start % typesize === 0 && wanted.end % typesize === 0) {
        const span = wanted.end - wanted.start;
        const got = getitem(chunk, wanted.start / typesize, span / typesize, out.subarray(wanted.start, wanted.end)) as number;
        if (got !== span) throw new Error(got < 0 ? `c-blosc could not decode the chunk (error ${got}): its blocks are corrupt` : `c-blosc decoded ${got} bytes of the ${span} asked for`);
        return out;
      }
      const written = decompress(chunk, out, size, 1) as number;
      if (written !== size) throw new Error(written < 0 ? `c-blosc could not decode the chunk (error ${written}): its blocks are corrupt` : `c-blosc decoded ${written} bytes, the chunk's header declares ${size}`);
      return out;
    },
  };
}
