import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { DType, PixelArray, SourceEncoding, SourceTile } from '@tilefarm/contracts';

/**
 * Source tiles: a 16-byte header, then the little-endian samples, as they are ("raw-v1") or
 * compressed with raw deflate ("raw-deflate-v1"). The header says which, so a reader needs no
 * manifest and datasets written before raw-v1 existed stay readable.
 *   bytes 0-3  "TFS1"
 *   byte  4    dtype: 1 uint8, 2 uint16, 3 float32
 *   byte  5    body: 0 raw deflate (raw-deflate-v1; the byte was reserved, always 0), 1 none (raw-v1)
 *   bytes 6-7  reserved (0)
 *   bytes 8-11 width  (uint32 LE)
 *   bytes 12-15 height (uint32 LE)
 * raw-v1 is the default: decoding it is a typed-array view on the bytes read (no copy), while
 * inflating a 256² uint16 tile costs 0.3-0.6 ms on the worker's main thread, more than the
 * JPEG encode of the finished tile, for 1.1-1.9× less storage on noisy 16-bit data
 * (figures: packages/render/README.md, "Source encoding").
 */
export const DEFAULT_SOURCE_ENCODING: SourceEncoding = 'raw-v1';
const MAGIC = 0x31534654; // "TFS1" read as uint32 LE
const HEADER_BYTES = 16;
const BODY_CODES: Record<SourceEncoding, number> = { 'raw-deflate-v1': 0, 'raw-v1': 1 };
const DTYPE_CODES: Record<DType, number> = { uint8: 1, uint16: 2, float32: 3 };
const CODE_DTYPES: Record<number, DType> = { 1: 'uint8', 2: 'uint16', 3: 'float32' };
const BYTES_PER_SAMPLE: Record<DType, number> = { uint8: 1, uint16: 2, float32: 4 };

export class SourceTileFormatError extends Error {}

/** raw-deflate-v1 at the given zlib level (kept under this name for its callers). */
export function encodeSourceTile(tile: SourceTile, level = 1): Buffer {
  return encodeSourceTileAs('raw-deflate-v1', tile, level);
}

export function encodeSourceTileAs(encoding: SourceEncoding, tile: SourceTile, deflateLevel = 1): Buffer {
  const expected = tile.width * tile.height;
  if (tile.data.length !== expected) throw new SourceTileFormatError(`tile has ${tile.data.length} samples, expected ${expected}`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt8(DTYPE_CODES[tile.dtype], 4);
  header.writeUInt8(BODY_CODES[encoding], 5);
  header.writeUInt32LE(tile.width, 8);
  header.writeUInt32LE(tile.height, 12);
  const bytes = Buffer.from(tile.data.buffer, tile.data.byteOffset, tile.data.byteLength);
  return Buffer.concat([header, encoding === 'raw-v1' ? bytes : deflateRawSync(bytes, { level: deflateLevel })]);
}

/** Which encoding a stored tile uses (from its header). */
export function sourceTileEncoding(encoded: Buffer): SourceEncoding {
  if (encoded.length < HEADER_BYTES || encoded.readUInt32LE(0) !== MAGIC) throw new SourceTileFormatError('not a raw-deflate-v1 or raw-v1 source tile');
  const code = encoded.readUInt8(5);
  const encoding = (Object.keys(BODY_CODES) as SourceEncoding[]).find((e) => BODY_CODES[e] === code);
  if (encoding === undefined) throw new SourceTileFormatError(`unknown body code ${code}`);
  return encoding;
}

/** The samples of a raw-v1 tile are a view on `encoded` (no copy) when aligned: keep `encoded` immutable. */
export function decodeSourceTile(encoded: Buffer): SourceTile {
  const encoding = sourceTileEncoding(encoded);
  const dtype = CODE_DTYPES[encoded.readUInt8(4)];
  if (dtype === undefined) throw new SourceTileFormatError(`unknown dtype code ${encoded.readUInt8(4)}`);
  const width = encoded.readUInt32LE(8);
  const height = encoded.readUInt32LE(12);
  if (width === 0 || height === 0 || width > 4096 || height > 4096) throw new SourceTileFormatError(`bad tile size ${width}x${height}`);
  const byteLength = width * height * BYTES_PER_SAMPLE[dtype];
  const body = encoded.subarray(HEADER_BYTES);
  const raw = encoding === 'raw-v1' ? body : inflateRawSync(body, { maxOutputLength: byteLength });
  if (raw.length !== byteLength) throw new SourceTileFormatError(`tile body is ${raw.length} bytes, expected ${byteLength}`);
  // Stored objects and inflate output are fresh Buffers at offset 0 of their own ArrayBuffer in
  // practice (16-byte header: still aligned); copy only if misaligned.
  const aligned = raw.byteOffset % BYTES_PER_SAMPLE[dtype] === 0 ? raw : Buffer.from(raw);
  return { width, height, dtype, data: viewAs(dtype, aligned) };
}

function viewAs(dtype: DType, bytes: Buffer): PixelArray {
  const n = bytes.byteLength / BYTES_PER_SAMPLE[dtype];
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(bytes.buffer, bytes.byteOffset, n);
    case 'uint16':
      return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    case 'float32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }
}

export function allocPixels(dtype: DType, n: number): PixelArray {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'float32':
      return new Float32Array(n);
  }
}
