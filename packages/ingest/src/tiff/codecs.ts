import { inflate } from 'node:zlib';
import { promisify } from 'node:util';
import { decodeEmbeddedImage } from '../raster-decoder';
import { decodeJpeg2000 } from './jpeg2000-decoder';
import { decodeZstd } from './zstd-decoder';

const inflateAsync = promisify(inflate);

/** TIFF Compression tag values this reader decodes. */
export const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  5: 'LZW',
  8: 'deflate',
  32946: 'deflate (old code)',
  32773: 'PackBits',
  6: 'old-style JPEG',
  7: 'JPEG',
  33003: 'JPEG 2000 (Aperio YCbCr)',
  33004: 'JPEG 2000 (Aperio/libvips)',
  33005: 'JPEG 2000 (Aperio RGB)',
  34712: 'JPEG 2000',
  50000: 'zstd',
  50001: 'WebP',
  34887: 'LERC',
};

const SUPPORTED = new Set([1, 5, 7, 8, 32946, 32773, 50000, 50001, 33003, 33004, 33005, 34712]);

/** JPEG 2000 compressions; 33003 and 33004 (Aperio, and libvips' writer) hold 3-component pixels as YCbCr. */
const JPEG2000 = new Set([33003, 33004, 33005, 34712]);

export function isJpeg2000Compression(code: number): boolean {
  return JPEG2000.has(code);
}

export function isSupportedCompression(code: number): boolean {
  return SUPPORTED.has(code);
}

/** Compressions that store a whole image stream per chunk, decoded to interleaved 8-bit samples. */
export function isImageStreamCompression(code: number): boolean {
  return code === 7 || code === 50001;
}

/** What a chunk decodes to, for codecs that carry their own image header (JPEG, WebP). */
export interface ChunkShape {
  /** Pixels across and down the chunk as stored (tiles are full size, the last strip may be short). */
  width: number;
  height: number;
  /** Interleaved samples per pixel in the chunk. */
  samples: number;
  /** The page's JPEGTables (SOI, DQT/DHT, EOI), shared by every JPEG chunk, if any. */
  jpegTables: Buffer | undefined;
  /** Byte order the caller expects multi-byte samples in (the file's). */
  littleEndian: boolean;
}

/** Thrown for a chunk that does not decode to the size its page declares; the caller adds where. */
export class ChunkDecodeError extends Error {}

/**
 * Decodes one strip or tile to exactly `expected` bytes. The output size is capped at `expected`
 * so a chunk that inflates to far more than declared (a decompression bomb) fails instead of
 * allocating: zlib stops at maxOutputLength.
 */
export async function decodeChunk(compression: number, input: Buffer, expected: number, shape: ChunkShape): Promise<Buffer> {
  let out: Buffer;
  switch (compression) {
    case 7:
      out = await decodeImageStream(withJpegTables(input, shape.jpegTables), shape, 'JPEG');
      break;
    case 50001:
      out = await decodeImageStream(input, shape, 'WebP');
      break;
    case 33003:
    case 33004:
    case 33005:
    case 34712:
      out = await decodeJpeg2000Chunk(compression, input, expected, shape);
      break;
    case 50000:
      try {
        out = decodeZstd(input, expected);
      } catch (e) {
        throw new ChunkDecodeError(`zstd data is corrupt (${(e as Error).message})`);
      }
      break;
    case 1:
      out = input;
      break;
    case 8:
    case 32946:
      try {
        out = await inflateAsync(input, { maxOutputLength: expected, finishFlush: 2 /* Z_SYNC_FLUSH: tolerate a missing final block */ });
      } catch (e) {
        throw new ChunkDecodeError(`deflate data is corrupt (${(e as Error).message})`);
      }
      break;
    case 5:
      out = decodeLzw(input, expected);
      break;
    case 32773:
      out = decodePackBits(input, expected);
      break;
    default:
      throw new ChunkDecodeError(`compression ${COMPRESSION_NAMES[compression] ?? compression} is not supported`);
  }
  if (out.length < expected) throw new ChunkDecodeError(`decodes to ${out.length} bytes, expected ${expected}`);
  return out.length === expected ? out : out.subarray(0, expected);
}

/**
 * A TIFF JPEG chunk is an abbreviated stream: SOI, frame and scan, EOI, with the quantisation and
 * Huffman tables kept once per page in JPEGTables. Splicing the tables (without their EOI) in
 * front of the chunk (without its SOI) gives a complete interchange stream any decoder reads.
 */
export function withJpegTables(chunk: Buffer, tables: Buffer | undefined): Buffer {
  if (!tables || tables.length < 4) return chunk;
  const soi = (b: Buffer) => b[0] === 0xff && b[1] === 0xd8;
  if (!soi(tables) || !soi(chunk)) throw new ChunkDecodeError('JPEG data does not start with an SOI marker');
  const tablesEnd = tables[tables.length - 2] === 0xff && tables[tables.length - 1] === 0xd9 ? tables.length - 2 : tables.length;
  return Buffer.concat([tables.subarray(0, tablesEnd), chunk.subarray(2)]);
}

async function decodeImageStream(stream: Buffer, shape: ChunkShape, codec: string): Promise<Buffer> {
  let img;
  try {
    img = await decodeEmbeddedImage(stream, {
      // The stream declares its own size: allow the chunk's, refuse a bomb.
      maxPixels: Math.max(1, shape.width * shape.height),
      channels: shape.samples as 1 | 3 | 4,
    });
  } catch (e) {
    throw new ChunkDecodeError(`${codec} data cannot be decoded (${(e as Error).message.split('\n')[0]})`);
  }
  if (img.channels !== shape.samples) throw new ChunkDecodeError(`${codec} data has ${img.channels} component(s), the page ${shape.samples} sample(s) per pixel`);
  if (img.width < shape.width || img.height < shape.height) throw new ChunkDecodeError(`${codec} data is ${img.width}×${img.height}, smaller than the ${shape.width}×${shape.height} chunk`);
  if (img.width === shape.width && img.height === shape.height) return img.data;
  // Some writers pad the last strip to full height: keep the chunk's own rows and columns.
  const rowBytes = shape.width * shape.samples;
  const out = Buffer.alloc(rowBytes * shape.height);
  for (let r = 0; r < shape.height; r++) img.data.copy(out, r * rowBytes, r * img.width * shape.samples, r * img.width * shape.samples + rowBytes);
  return out;
}

async function decodeJpeg2000Chunk(compression: number, input: Buffer, expected: number, shape: ChunkShape): Promise<Buffer> {
  let img;
  try {
    img = await decodeJpeg2000(input);
  } catch (e) {
    throw new ChunkDecodeError(`JPEG 2000 data cannot be decoded (${e instanceof Error ? e.message : String(e)})`);
  }
  const bytes = expected / (shape.width * shape.height * shape.samples);
  if (img.components !== shape.samples) throw new ChunkDecodeError(`JPEG 2000 data has ${img.components} component(s), the page ${shape.samples} sample(s) per pixel`);
  if (img.signed || Math.ceil(img.bitsPerSample / 8) !== bytes) throw new ChunkDecodeError(`JPEG 2000 data holds ${img.signed ? 'signed ' : ''}${img.bitsPerSample}-bit samples, the page ${bytes * 8}-bit unsigned`);
  if (img.width < shape.width || img.height < shape.height) throw new ChunkDecodeError(`JPEG 2000 data is ${img.width}×${img.height}, smaller than the ${shape.width}×${shape.height} chunk`);
  const pixelBytes = shape.samples * bytes;
  let out = img.data;
  if (img.width !== shape.width || img.height !== shape.height) {
    out = Buffer.alloc(expected);
    for (let r = 0; r < shape.height; r++) img.data.copy(out, r * shape.width * pixelBytes, r * img.width * pixelBytes, (r * img.width + shape.width) * pixelBytes);
  }
  if (shape.samples === 3 && (compression === 33003 || compression === 33004)) yccToRgb(out, bytes, img.bitsPerSample);
  // The decoder gives native (little-endian) samples; the caller reads them in the file's order.
  if (bytes === 2 && !shape.littleEndian) out.swap16();
  return out;
}

/**
 * JPEG (JFIF, full-range BT.601) YCbCr → RGB in place, for JPEG 2000 tiles that Aperio and
 * libvips store as YCbCr outside the codestream (the codestream's own colour transform, if any,
 * is undone by OpenJPEG). A colour matrix, not a codec: libtiff and libvips apply the same one.
 */
function yccToRgb(data: Buffer, bytes: number, bits: number): void {
  const max = 2 ** bits - 1;
  const half = 2 ** (bits - 1);
  const clip = (v: number) => (v < 0 ? 0 : v > max ? max : Math.round(v));
  const read = bytes === 1 ? (i: number) => data[i]! : (i: number) => data.readUInt16LE(i * 2);
  const write = bytes === 1 ? (i: number, v: number) => (data[i] = v) : (i: number, v: number) => data.writeUInt16LE(v, i * 2);
  for (let i = 0; i < data.length / bytes; i += 3) {
    const y = read(i);
    const cb = read(i + 1) - half;
    const cr = read(i + 2) - half;
    write(i, clip(y + 1.402 * cr));
    write(i + 1, clip(y - 0.344136 * cb - 0.714136 * cr));
    write(i + 2, clip(y + 1.772 * cb));
  }
}

/** TIFF LZW (MSB-first codes, 9-12 bits, "early change"), as libtiff writes it. */
export function decodeLzw(input: Buffer, expected: number): Buffer {
  const out = Buffer.alloc(expected);
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint32Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let next = 258;
  let width = 9;
  let prev = -1;
  let pos = 0;
  let bit = 0;
  const totalBits = input.length * 8;
  // Writes the string of `code` at `pos` (back to front along the prefix chain), clipped to `expected`.
  const emit = (code: number) => {
    const n = length[code]!;
    let c = code;
    for (let i = n - 1; i >= 0; i--) {
      if (pos + i < expected) out[pos + i] = suffix[c]!;
      c = prefix[c]!;
    }
    pos += n;
  };
  while (bit + width <= totalBits && pos < expected) {
    const b = bit >> 3;
    const v = (input[b]! << 16) | ((input[b + 1] ?? 0) << 8) | (input[b + 2] ?? 0);
    const code = (v >> (24 - (bit & 7) - width)) & ((1 << width) - 1);
    bit += width;
    if (code === 257) break;
    if (code === 256) {
      next = 258;
      width = 9;
      prev = -1;
      continue;
    }
    if (prev === -1) {
      if (code > 255) throw new ChunkDecodeError(`LZW data is corrupt (code ${code} after clear)`);
      emit(code);
      prev = code;
      continue;
    }
    // A code not yet in the table (the KwKwK case) is prev's string plus its own first byte.
    const known = code < next;
    let firstByte: number;
    if (known) {
      emit(code);
      firstByte = first[code]!;
    } else if (code === next) {
      firstByte = first[prev]!;
    } else {
      throw new ChunkDecodeError(`LZW data is corrupt (code ${code} beyond table size ${next})`);
    }
    if (next < 4096) {
      prefix[next] = prev;
      suffix[next] = firstByte;
      first[next] = first[prev]!;
      length[next] = length[prev]! + 1;
      next++;
    }
    if (!known) emit(code);
    if (next >= (1 << width) - 1 && width < 12) width++;
    prev = code;
  }
  return out.subarray(0, Math.min(pos, expected));
}

/** PackBits run-length decoding (Apple/TIFF). */
export function decodePackBits(input: Buffer, expected: number): Buffer {
  const out = Buffer.alloc(expected);
  let i = 0;
  let pos = 0;
  while (i < input.length && pos < expected) {
    const n = (input[i++]! << 24) >> 24;
    if (n >= 0) {
      const end = Math.min(i + n + 1, input.length);
      pos += input.copy(out, pos, i, Math.min(end, i + expected - pos));
      i = end;
    } else if (n !== -128) {
      const v = input[i++] ?? 0;
      const run = Math.min(1 - n, expected - pos);
      out.fill(v, pos, pos + run);
      pos += run;
    }
  }
  return out.subarray(0, pos);
}

/** Undoes TIFF horizontal differencing (Predictor 2) in place, row by row, per interleaved sample. */
export function undoHorizontalPredictor(data: Uint8Array | Uint16Array | Uint32Array, rowLength: number, samplesPerPixel: number): void {
  const rows = Math.floor(data.length / rowLength);
  for (let r = 0; r < rows; r++) {
    const start = r * rowLength;
    for (let i = start + samplesPerPixel; i < start + rowLength; i++) data[i] = data[i]! + data[i - samplesPerPixel]!;
  }
}
