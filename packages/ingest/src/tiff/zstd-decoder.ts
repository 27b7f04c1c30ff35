/**
 * Zstandard decoding through fzstd (pure JavaScript: Node 20's zlib has no zstd, and the native
 * bindings fetch prebuilt binaries at install). Loaded on first use, so processes that never
 * meet a zstd TIFF do not load it.
 */
let fzstd: typeof import('fzstd') | undefined;

/**
 * Decodes into a buffer of exactly `expected` bytes: the output is never larger than that, so a
 * frame that claims a huge size cannot allocate it. Throws on corrupt data.
 */
export function decodeZstd(input: Uint8Array, expected: number): Buffer {
  fzstd ??= require('fzstd') as typeof import('fzstd');
  const out = Buffer.alloc(expected);
  const result = fzstd.decompress(input, out);
  return result.buffer === out.buffer ? out : Buffer.from(result.buffer, result.byteOffset, result.byteLength);
}
