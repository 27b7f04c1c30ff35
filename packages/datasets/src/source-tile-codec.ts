import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { DType, PixelArray, SourceTile } from '@tilefarm/contracts';

/**
 * Source tile encoding "raw-deflate-v1": a 16-byte header, then the little-endian samples
 * compressed with raw deflate. Chosen for decode speed: inflating raw samples is one zlib call
 * with no PNG filtering or byte swapping (see README, "Source tile encoding" for the measurement).
 *   bytes 0-3  "TFS1"
 *   byte  4    dtype: 1 uint8, 2 uint16, 3 float32
 *   bytes 5-7  reserved (0)
 *   bytes 8-11 width  (uint32 LE)
 *   bytes 12-15 height (uint32 LE)
 */
const MAGIC = 0x31534654; // "TFS1" read as uint32 LE
const HEADER_BYTES = 16;
const DTYPE_CODES: Record<DType, number> = { uint8: 1, uint16: 2, float32: 3 };
const CODE_DTYPES: Record<number, DType> = { 1: 'uint8', 2: 'uint16', 3: 'float32' };
const BYTES_PER_SAMPLE: Record<DType, number> = { uint8: 1, uint16: 2, float32: 4 };

export class SourceTileFormatError extends Error {}

export function encodeSourceTile(tile: SourceTile, level = 1): Buffer {
  const expected = tile.width * tile.height;
  if (tile.data.length !== expected) throw new SourceTileFormatError(`tile has ${tile.data.length} samples, expected ${expected}`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt8(DTYPE_CODES[tile.dtype], 4);
  header.writeUInt32LE(tile.width, 8);
  header.writeUInt32LE(tile.height, 12);
  const bytes = Buffer.from(tile.data.buffer, tile.data.byteOffset, tile.data.byteLength);
  return Buffer.concat([header, deflateRawSync(bytes, { level })]);
}

export function decodeSourceTile(encoded: Buffer): SourceTile {
  if (encoded.length < HEADER_BYTES || encoded.readUInt32LE(0) !== MAGIC) throw new SourceTileFormatError('not a raw-deflate-v1 source tile');
  const dtype = CODE_DTYPES[encoded.readUInt8(4)];
  if (dtype === undefined) throw new SourceTileFormatError(`unknown dtype code ${encoded.readUInt8(4)}`);
  const width = encoded.readUInt32LE(8);
  const height = encoded.readUInt32LE(12);
  if (width === 0 || height === 0 || width > 4096 || height > 4096) throw new SourceTileFormatError(`bad tile size ${width}x${height}`);
  const byteLength = width * height * BYTES_PER_SAMPLE[dtype];
  const raw = inflateRawSync(encoded.subarray(HEADER_BYTES), { maxOutputLength: byteLength });
  if (raw.length !== byteLength) throw new SourceTileFormatError(`tile body is ${raw.length} bytes, expected ${byteLength}`);
  // inflate returns a fresh Buffer, often at offset 0 of its own ArrayBuffer; copy only if misaligned.
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
