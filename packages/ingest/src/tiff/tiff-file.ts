import { open, type FileHandle } from 'node:fs/promises';
import type { DType } from '@tilefarm/contracts';
import { IngestError } from '../errors';
import { COMPRESSION_NAMES, isImageStreamCompression, isJpeg2000Compression, isSupportedCompression } from './codecs';

/** Opens a file to ingest; one that is missing or cannot be opened is an IngestError saying so. */
export async function openSourceFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IngestError(code === 'ENOENT' ? 'not_found' : 'unsupported', `cannot open ${path}: ${(e as Error).message}`);
  }
}

/** Byte size of each TIFF field type (types 13 and 18 are IFD offsets). */
const TYPE_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  PlanarConfiguration: 284,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
} as const;

/** Largest JPEGTables accepted (real ones are well under 1 KB per component). */
const MAX_JPEG_TABLES_BYTES = 1024 * 1024;

/** A tag's value: inline bytes, or where in the file its array lives (read only when needed). */
interface Entry {
  type: number;
  count: number;
  inline?: Buffer;
  offset?: number;
}

/** Parsed IFD of one page (or one SubIFD), with strip/tile tables left on disk until read. */
export interface TiffPage {
  /** Human name for messages, e.g. "page 12" or "page 12, reduced level 2". */
  where: string;
  width: number;
  height: number;
  bitsPerSample: number;
  samplesPerPixel: number;
  /** 1 uint, 2 int, 3 float. */
  sampleFormat: number;
  compression: number;
  predictor: number;
  /** 1 interleaved (chunky), 2 one plane per sample. */
  planar: number;
  photometric: number;
  newSubfileType: number;
  extraSamples: number;
  /** Strips are full-width chunks of rowsPerStrip rows; tiles are chunkWidth × chunkHeight. */
  tiled: boolean;
  chunkWidth: number;
  chunkHeight: number;
  description: string | undefined;
  /** Tables shared by every JPEG chunk of the page (compression 7), if the writer stored them apart. */
  jpegTables: Buffer | undefined;
  subIfdOffsets: number[];
  offsetsEntry: Entry;
  countsEntry: Entry;
}

export interface ChunkTable {
  offsets: Float64Array;
  counts: Float64Array;
}

/** The sample type of a page, or an `unsupported` IngestError naming it. */
export function pageDType(page: TiffPage): DType {
  const { bitsPerSample: bits, sampleFormat: fmt } = page;
  if (fmt === 1 && bits === 8) return 'uint8';
  if (fmt === 1 && bits === 16) return 'uint16';
  if (fmt === 3 && bits === 32) return 'float32';
  const kind = fmt === 2 ? 'signed integer' : fmt === 3 ? 'floating point' : fmt === 1 ? 'unsigned integer' : `SampleFormat ${fmt}`;
  throw new IngestError('unsupported', `${page.where}: ${bits}-bit ${kind} samples are not supported (uint8, uint16 and float32 are)`);
}

export const SUPPORTED_COMPRESSIONS_TEXT = 'none, deflate, LZW, PackBits, JPEG, JPEG 2000, zstd and WebP are';

export function checkPageDecodable(page: TiffPage): void {
  if (!isSupportedCompression(page.compression)) {
    throw new IngestError('unsupported', `${page.where}: compression ${COMPRESSION_NAMES[page.compression] ?? page.compression} is not supported (${SUPPORTED_COMPRESSIONS_TEXT})`);
  }
  if (page.predictor !== 1 && page.predictor !== 2) throw new IngestError('unsupported', `${page.where}: predictor ${page.predictor} is not supported (none and horizontal are)`);
  if (page.photometric === 3) throw new IngestError('unsupported', `${page.where}: palette-colour images are not supported`);
  const name = COMPRESSION_NAMES[page.compression];
  if (isImageStreamCompression(page.compression)) {
    if (page.bitsPerSample !== 8 || page.sampleFormat !== 1) throw new IngestError('unsupported', `${page.where}: ${name} with ${page.bitsPerSample}-bit samples is not supported (8-bit unsigned is)`);
    const perChunk = page.planar === 2 ? 1 : page.samplesPerPixel;
    const allowed = page.compression === 50001 ? [3, 4] : [1, 3];
    if (!allowed.includes(perChunk)) {
      throw new IngestError('unsupported', `${page.where}: ${name} with ${perChunk} samples per pixel in a chunk is not supported (${allowed.join(' or ')} are)`);
    }
  }
  if (isJpeg2000Compression(page.compression) && (page.sampleFormat !== 1 || page.bitsPerSample > 16)) {
    throw new IngestError('unsupported', `${page.where}: ${name} with ${page.bitsPerSample}-bit samples of format ${page.sampleFormat} is not supported (8- and 16-bit unsigned are)`);
  }
  // YCbCr is only read where the JPEG decoder converts it back to RGB; raw subsampled YCbCr is not.
  if (page.photometric === 6 && page.compression !== 7 && page.compression !== 33003) throw new IngestError('unsupported', `${page.where}: YCbCr images are only supported JPEG- or JPEG 2000-compressed`);
}

/** Pixels are RGB colour: RGB photometric, or YCbCr that the JPEG decoder turns into RGB. */
export function isColourPage(page: TiffPage): boolean {
  return page.samplesPerPixel >= 3 && (page.photometric === 2 || (page.photometric === 6 && (page.compression === 7 || page.compression === 33003)));
}

/**
 * A TIFF or BigTIFF file read through a file handle: IFDs, tag values and strip/tile bytes are
 * read at their offsets, never the whole file. Every read past the end is a `truncated` error.
 */
export class TiffFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly size: number,
    readonly littleEndian: boolean,
    readonly bigTiff: boolean,
    readonly firstIfdOffset: number,
  ) {}

  static async open(path: string): Promise<TiffFile> {
    const handle = await openSourceFile(path);
    try {
      const size = (await handle.stat()).size;
      const head = Buffer.alloc(16);
      const { bytesRead } = await handle.read(head, 0, 16, 0);
      if (bytesRead < 8) throw new IngestError('truncated', `${path}: file is ${size} bytes, too short for a TIFF header`);
      const order = head.toString('latin1', 0, 2);
      if (order !== 'II' && order !== 'MM') throw new IngestError('corrupt', `${path}: not a TIFF file (bad byte-order mark)`);
      const le = order === 'II';
      const magic = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
      if (magic === 42) {
        const first = le ? head.readUInt32LE(4) : head.readUInt32BE(4);
        return new TiffFile(path, handle, size, le, false, first);
      }
      if (magic === 43) {
        if (bytesRead < 16) throw new IngestError('truncated', `${path}: BigTIFF header is cut off`);
        const first = Number(le ? head.readBigUInt64LE(8) : head.readBigUInt64BE(8));
        return new TiffFile(path, handle, size, le, true, first);
      }
      throw new IngestError('corrupt', `${path}: not a TIFF file (magic ${magic})`);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Reads exactly `length` bytes at `position`, or fails as truncated naming `what`. */
  async readAt(position: number, length: number, what: string): Promise<Buffer> {
    if (position + length > this.size) {
      throw new IngestError('truncated', `${what} lies at bytes ${position}..${position + length} but the file has only ${this.size} bytes: the file is truncated`);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, position + done);
      if (bytesRead === 0) throw new IngestError('truncated', `${what}: unexpected end of file at byte ${position + done}`);
      done += bytesRead;
    }
    return buf;
  }

  /** Offsets of the main IFD chain (the pages), with loop detection. */
  async pageOffsets(maxPages = 1_000_000): Promise<number[]> {
    const offsets: number[] = [];
    const seen = new Set<number>();
    let offset = this.firstIfdOffset;
    while (offset !== 0) {
      if (seen.has(offset)) throw new IngestError('corrupt', `IFD chain loops back to byte ${offset} after ${offsets.length} pages`);
      if (offsets.length >= maxPages) throw new IngestError('too_large', `more than ${maxPages} pages`);
      seen.add(offset);
      offsets.push(offset);
      offset = await this.nextIfdOffset(offset, `IFD of page ${offsets.length - 1}`);
    }
    if (offsets.length === 0) throw new IngestError('corrupt', 'the file has no pages');
    return offsets;
  }

  private async nextIfdOffset(offset: number, what: string): Promise<number> {
    const countSize = this.bigTiff ? 8 : 2;
    const entrySize = this.bigTiff ? 20 : 12;
    const count = this.uint(await this.readAt(offset, countSize, what), 0, countSize);
    const nextPos = offset + countSize + count * entrySize;
    return this.uint(await this.readAt(nextPos, this.bigTiff ? 8 : 4, what), 0, this.bigTiff ? 8 : 4);
  }

  /** Parses the IFD at `offset`. */
  async readPage(offset: number, where: string): Promise<TiffPage> {
    const countSize = this.bigTiff ? 8 : 2;
    const entrySize = this.bigTiff ? 20 : 12;
    const valueSize = this.bigTiff ? 8 : 4;
    const count = this.uint(await this.readAt(offset, countSize, `IFD of ${where}`), 0, countSize);
    if (count > 4096) throw new IngestError('corrupt', `${where}: IFD claims ${count} tags`);
    const body = await this.readAt(offset + countSize, count * entrySize, `IFD of ${where}`);
    const entries = new Map<number, Entry>();
    for (let i = 0; i < count; i++) {
      const p = i * entrySize;
      const tag = this.uint(body, p, 2);
      const type = this.uint(body, p + 2, 2);
      const n = this.uint(body, p + 4, this.bigTiff ? 8 : 4);
      const size = TYPE_SIZES[type];
      if (size === undefined) continue; // unknown types are skipped, as the spec asks readers to
      const valueAt = p + 4 + (this.bigTiff ? 8 : 4);
      if (n * size <= valueSize) entries.set(tag, { type, count: n, inline: body.subarray(valueAt, valueAt + n * size) });
      else entries.set(tag, { type, count: n, offset: this.uint(body, valueAt, valueSize) });
    }
    const num = async (tag: number, fallback?: number): Promise<number> => {
      const e = entries.get(tag);
      if (!e || e.count === 0) {
        if (fallback === undefined) throw new IngestError('corrupt', `${where}: required TIFF tag ${tag} is missing`);
        return fallback;
      }
      const values = await this.values(e, `${where} tag ${tag}`, 1);
      return values[0]!;
    };
    const width = await num(TAG.ImageWidth);
    const height = await num(TAG.ImageLength);
    const samplesPerPixel = await num(TAG.SamplesPerPixel, 1);
    const bitsEntry = entries.get(TAG.BitsPerSample);
    const bits = bitsEntry ? await this.values(bitsEntry, `${where} BitsPerSample`, 64) : [1];
    if (bits.some((b) => b !== bits[0])) throw new IngestError('unsupported', `${where}: samples of different bit depths (${bits.join(', ')})`);
    const formatEntry = entries.get(TAG.SampleFormat);
    const sampleFormat = formatEntry ? (await this.values(formatEntry, `${where} SampleFormat`, 64))[0]! : 1;
    const tiled = entries.has(TAG.TileOffsets);
    const offsetsEntry = entries.get(tiled ? TAG.TileOffsets : TAG.StripOffsets);
    const countsEntry = entries.get(tiled ? TAG.TileByteCounts : TAG.StripByteCounts);
    if (!offsetsEntry || !countsEntry) throw new IngestError('corrupt', `${where}: no strip or tile offsets`);
    const chunkWidth = tiled ? await num(TAG.TileWidth) : width;
    const chunkHeight = tiled ? await num(TAG.TileLength) : Math.min(await num(TAG.RowsPerStrip, height), height);
    const subEntry = entries.get(TAG.SubIFDs);
    const extraEntry = entries.get(TAG.ExtraSamples);
    const descEntry = entries.get(TAG.ImageDescription);
    let description: string | undefined;
    if (descEntry) {
      if (descEntry.count > 64 * 1024 * 1024) throw new IngestError('too_large', `${where}: ImageDescription of ${descEntry.count} bytes`);
      const raw = descEntry.inline ?? (await this.readAt(descEntry.offset!, descEntry.count, `${where} ImageDescription`));
      description = raw.toString('utf8').replace(/\0+$/, '');
    }
    const compression = await num(TAG.Compression, 1);
    const tablesEntry = compression === 7 ? entries.get(TAG.JPEGTables) : undefined;
    if (tablesEntry && tablesEntry.count > MAX_JPEG_TABLES_BYTES) throw new IngestError('corrupt', `${where}: JPEGTables of ${tablesEntry.count} bytes`);
    const jpegTables = tablesEntry ? (tablesEntry.inline ?? (await this.readAt(tablesEntry.offset!, tablesEntry.count, `${where} JPEGTables`))) : undefined;
    const page: TiffPage = {
      where,
      width,
      height,
      bitsPerSample: bits[0]!,
      samplesPerPixel,
      sampleFormat,
      compression,
      predictor: await num(TAG.Predictor, 1),
      planar: await num(TAG.PlanarConfiguration, 1),
      photometric: await num(TAG.Photometric, 1),
      newSubfileType: await num(TAG.NewSubfileType, 0),
      extraSamples: extraEntry?.count ?? 0,
      tiled,
      chunkWidth,
      chunkHeight,
      description,
      jpegTables: jpegTables && Buffer.from(jpegTables),
      subIfdOffsets: subEntry ? await this.values(subEntry, `${where} SubIFDs`, 64) : [],
      offsetsEntry,
      countsEntry,
    };
    if (width < 1 || height < 1) throw new IngestError('corrupt', `${where}: image is ${width}×${height}`);
    if (chunkWidth < 1 || chunkHeight < 1) throw new IngestError('corrupt', `${where}: chunks of ${chunkWidth}×${chunkHeight}`);
    if (samplesPerPixel < 1 || samplesPerPixel > 64) throw new IngestError('unsupported', `${where}: ${samplesPerPixel} samples per pixel`);
    const expected = this.chunkCount(page);
    if (offsetsEntry.count < expected || countsEntry.count < expected) {
      throw new IngestError('corrupt', `${where}: ${offsetsEntry.count} chunk offsets and ${countsEntry.count} byte counts, expected ${expected}`);
    }
    return page;
  }

  chunkCount(page: TiffPage): number {
    const across = Math.ceil(page.width / page.chunkWidth);
    const down = Math.ceil(page.height / page.chunkHeight);
    return across * down * (page.planar === 2 ? page.samplesPerPixel : 1);
  }

  /** Strip/tile offsets and byte counts, checked against the file size (a truncated file fails here). */
  async chunkTable(page: TiffPage): Promise<ChunkTable> {
    const n = this.chunkCount(page);
    const offsets = Float64Array.from(await this.values(page.offsetsEntry, `${page.where} chunk offsets`, n));
    const counts = Float64Array.from(await this.values(page.countsEntry, `${page.where} chunk byte counts`, n));
    for (let i = 0; i < n; i++) {
      const end = offsets[i]! + counts[i]!;
      if (end > this.size) {
        throw new IngestError('truncated', `${page.where}: ${page.tiled ? 'tile' : 'strip'} ${i} ends at byte ${end} but the file has only ${this.size} bytes: the file is truncated`);
      }
    }
    return { offsets, counts };
  }

  /** The first `limit` values of an entry as numbers. */
  private async values(e: Entry, what: string, limit: number): Promise<number[]> {
    const n = Math.min(e.count, limit);
    const size = TYPE_SIZES[e.type]!;
    const bytes = e.inline ?? (await this.readAt(e.offset!, n * size, what));
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const p = i * size;
      switch (e.type) {
        case 5:
        case 10:
          out[i] = this.uint(bytes, p, 4) / (this.uint(bytes, p + 4, 4) || 1);
          break;
        case 11:
          out[i] = this.littleEndian ? bytes.readFloatLE(p) : bytes.readFloatBE(p);
          break;
        case 12:
          out[i] = this.littleEndian ? bytes.readDoubleLE(p) : bytes.readDoubleBE(p);
          break;
        default:
          out[i] = this.uint(bytes, p, size);
      }
    }
    return out;
  }

  private uint(buf: Buffer, at: number, size: number): number {
    const le = this.littleEndian;
    switch (size) {
      case 1:
        return buf[at]!;
      case 2:
        return le ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
      case 4:
        return le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
      default: {
        const v = le ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new IngestError('corrupt', `64-bit value ${v} is out of range`);
        return Number(v);
      }
    }
  }
}
