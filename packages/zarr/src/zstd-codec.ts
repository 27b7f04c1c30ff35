import type { ChunkDecoder } from './chunk-decoder';
// koffi ships types for its ES entry; this CommonJS package requires its CommonJS one (same API).
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'import' } });

/** ZSTD_getFrameContentSize's answers that are not a size: (unsigned long long)-1 and -2. */
const CONTENT_SIZE_UNKNOWN = 2n ** 64n - 1n;
const CONTENT_SIZE_ERROR = 2n ** 64n - 2n;
/** The smallest frame header (magic number and descriptor), below which nothing is a zstd frame. */
const MIN_FRAME_BYTES = 5;

/**
 * Decodes whole zstd chunks (Zarr v3's zstd codec and v2's numcodecs.zstd compressor: zstd frames)
 * with libzstd, the reference implementation (Debian's libzstd1), called through koffi: no code is
 * generated from strings (numcodecs' wasm glue, zarrita's default, builds functions with `new
 * Function`, refused by a process run with --disallow-code-generation-from-strings). Throws, saying
 * why, when the library cannot be loaded.
 */
export function openLibzstd(library = 'libzstd.so.1'): ChunkDecoder {
  const koffi = require('koffi') as Koffi;
  const lib = koffi.load(library);
  const version = lib.func('const char *ZSTD_versionString(void)');
  const contentSize = lib.func('unsigned long long ZSTD_getFrameContentSize(const void *src, size_t srcSize)');
  const createContext = lib.func('void *ZSTD_createDCtx(void)');
  const decompress = lib.func('size_t ZSTD_decompressDCtx(void *dctx, _Out_ void *dst, size_t dstCapacity, const void *src, size_t srcSize)');
  const isError = lib.func('unsigned int ZSTD_isError(size_t code)');
  const errorName = lib.func('const char *ZSTD_getErrorName(size_t code)');
  // One context for the process, reused by every decode (calls are synchronous, one at a time):
  // zstd's own advice, it saves allocating ~100 KB of tables per chunk.
  const context = createContext() as unknown;
  if (!context) throw new Error('ZSTD_createDCtx returned no context (out of memory)');
  const description = `libzstd ${String(version())} (${library})`;

  return {
    description,
    decode(chunk, maxBytes, allocate) {
      if (chunk.byteLength < MIN_FRAME_BYTES) throw new Error(`not a zstd chunk: ${chunk.byteLength} bytes, less than a zstd frame header`);
      const declared = BigInt(contentSize(chunk, chunk.byteLength) as number | bigint);
      if (declared === CONTENT_SIZE_ERROR) throw new Error('not a zstd chunk: its first bytes are not a zstd frame header');
      const known = declared !== CONTENT_SIZE_UNKNOWN;
      if (known && declared > BigInt(maxBytes)) throw new Error(`the chunk's zstd frame declares ${declared} decoded bytes, more than its ${maxBytes} (chunk shape × sample size)`);
      // A frame without its size (streamed writers) decodes into the most the chunk may hold.
      const capacity = known ? Number(declared) : maxBytes;
      // Not zero-filled: zstd writes every byte it reports, and a size short of the declared one is refused.
      const out = allocate ? allocate(capacity) : new Uint8Array(Buffer.allocUnsafeSlow(capacity).buffer, 0, capacity);
      const result = decompress(context, out, capacity, chunk, chunk.byteLength) as number | bigint;
      if (isError(result)) {
        const reason = String(errorName(result));
        throw new Error(known || reason !== 'Destination buffer is too small' ? `libzstd could not decode the chunk: ${reason} (corrupt or truncated)` : `the chunk's zstd frame decodes to more than its ${maxBytes} bytes (chunk shape × sample size)`);
      }
      const written = Number(result);
      if (known && written !== capacity) throw new Error(`libzstd decoded ${written} bytes, the chunk's zstd frame declares ${capacity}`);
      return written === capacity ? out : out.subarray(0, written);
    },
  };
}
