import type { DType, PixelArray } from '@tilefarm/contracts';
import { allocPixels } from '@tilefarm/datasets';
import { IngestError } from '../errors';
import { ChunkDecodeError, decodeChunk, undoHorizontalPredictor } from './codecs';
import { checkPageDecodable, pageDType, type ChunkTable, type TiffFile, type TiffPage } from './tiff-file';

const BYTES: Record<DType, number> = { uint8: 1, uint16: 2, float32: 4 };

/** Largest decoded chunk row (one strip, or one row of tiles) the reader holds; bigger is refused, not swapped. */
export const MAX_CHUNK_ROW_BYTES = 512 * 1024 * 1024;

/**
 * Reads rows of one page top to bottom, one sample plane per output array. Holds at most one
 * decoded chunk row (a strip, or a row of tiles across the width); uncompressed strips are read
 * row range by row range, so even a single-strip image is never read whole.
 */
export class PageReader {
  readonly dtype: DType;
  readonly width: number;
  readonly height: number;
  readonly samples: number;
  private table: ChunkTable | undefined;
  private cachedRow = -1;
  private cached: PixelArray[] = [];
  private readonly planeSamples: number;
  private readonly bytes: number;

  constructor(
    private readonly file: TiffFile,
    private readonly page: TiffPage,
  ) {
    checkPageDecodable(page);
    this.dtype = pageDType(page);
    this.width = page.width;
    this.height = page.height;
    this.samples = page.samplesPerPixel;
    this.planeSamples = page.planar === 2 ? 1 : page.samplesPerPixel;
    this.bytes = BYTES[this.dtype];
    const rowBytes = page.chunkHeight * page.width * this.planeSamples * this.bytes;
    if (rowBytes > MAX_CHUNK_ROW_BYTES && !(page.compression === 1 && !page.tiled)) {
      throw new IngestError('unsupported', `${page.where}: one compressed ${page.tiled ? 'row of tiles' : 'strip'} decodes to ${rowBytes} bytes, over the ${MAX_CHUNK_ROW_BYTES}-byte limit; rewrite the file with smaller strips or tiles`);
    }
  }

  /** Rows [y0, y1) of every sample: one array per sample, row-major, `width * (y1 - y0)` long. */
  async readRows(y0: number, y1: number): Promise<PixelArray[]> {
    const { width, page } = this;
    if (y0 < 0 || y1 > this.height || y1 <= y0) throw new RangeError(`rows ${y0}..${y1} of ${this.height}`);
    this.table ??= await this.file.chunkTable(page);
    const out = Array.from({ length: this.samples }, () => allocPixels(this.dtype, width * (y1 - y0)));
    let y = y0;
    while (y < y1) {
      const row = Math.floor(y / page.chunkHeight);
      const rowStart = row * page.chunkHeight;
      const rowEnd = Math.min(rowStart + page.chunkHeight, this.height);
      const end = Math.min(rowEnd, y1);
      for (let plane = 0; plane < (page.planar === 2 ? this.samples : 1); plane++) {
        let data: PixelArray;
        let from: number;
        if (page.compression === 1 && !page.tiled) {
          data = await this.readUncompressedRows(plane, row, y - rowStart, end - rowStart);
          from = 0;
        } else {
          data = (await this.chunkRow(row))[plane]!;
          from = y - rowStart;
        }
        this.scatter(data, from, end - y, plane, out, y - y0);
      }
      y = end;
    }
    return out;
  }

  /** Copies `rows` rows (starting at row `from` of `data`) into the outputs, de-interleaving samples. */
  private scatter(data: PixelArray, from: number, rows: number, plane: number, out: PixelArray[], dstRow: number): void {
    const { width } = this;
    const spp = this.planeSamples;
    if (spp === 1) {
      out[plane]!.set(data.subarray(from * width, (from + rows) * width), dstRow * width);
      return;
    }
    for (let s = 0; s < spp; s++) {
      const dst = out[s]!;
      const n = rows * width;
      const base = from * width * spp + s;
      const d0 = dstRow * width;
      for (let i = 0; i < n; i++) dst[d0 + i] = data[base + i * spp]!;
    }
  }

  private async readUncompressedRows(plane: number, stripInRow: number, a: number, b: number): Promise<PixelArray> {
    const { page } = this;
    const strips = Math.ceil(this.height / page.chunkHeight);
    const index = plane * strips + stripInRow;
    const rowBytes = this.width * this.planeSamples * this.bytes;
    const start = this.table!.offsets[index]! + a * rowBytes;
    const available = this.table!.counts[index]!;
    if ((b) * rowBytes > available) throw new IngestError('corrupt', `${page.where}: strip ${index} has ${available} bytes, too few for its rows`);
    const buf = await this.file.readAt(start, (b - a) * rowBytes, `${page.where} strip ${index}`);
    return this.view(buf);
  }

  /** The decoded chunk row `row` (one array per sample plane), cached until the next row is asked for. */
  private async chunkRow(row: number): Promise<PixelArray[]> {
    if (row === this.cachedRow) return this.cached;
    this.cached = [];
    this.cachedRow = -1;
    const { page, width } = this;
    const across = Math.ceil(width / page.chunkWidth);
    const down = Math.ceil(this.height / page.chunkHeight);
    const rows = Math.min(page.chunkHeight, this.height - row * page.chunkHeight);
    const planes = page.planar === 2 ? this.samples : 1;
    const result: PixelArray[] = [];
    for (let plane = 0; plane < planes; plane++) {
      const base = plane * across * down + row * across;
      // Strips may be short at the bottom; tiles are always stored full size.
      const expectedRows = page.tiled ? page.chunkHeight : rows;
      const decoded = await Promise.all(Array.from({ length: across }, (_, tx) => this.decode(base + tx, page.chunkWidth * expectedRows * this.planeSamples)));
      if (!page.tiled) {
        result.push(decoded[0]!);
        continue;
      }
      const target = allocPixels(this.dtype, rows * width * this.planeSamples);
      const rowLen = width * this.planeSamples;
      for (let tx = 0; tx < across; tx++) {
        const tile = decoded[tx]!;
        const x0 = tx * page.chunkWidth * this.planeSamples;
        const copy = Math.min(page.chunkWidth, width - tx * page.chunkWidth) * this.planeSamples;
        const tileRow = page.chunkWidth * this.planeSamples;
        for (let r = 0; r < rows; r++) target.set(tile.subarray(r * tileRow, r * tileRow + copy), r * rowLen + x0);
      }
      result.push(target);
    }
    this.cached = result;
    this.cachedRow = row;
    return result;
  }

  private async decode(index: number, samples: number): Promise<PixelArray> {
    const { page } = this;
    const what = `${page.where} ${page.tiled ? 'tile' : 'strip'} ${index}`;
    const count = this.table!.counts[index]!;
    // Writers leave never-written (sparse) tiles at offset/count 0: they read as zeros.
    if (count === 0) return allocPixels(this.dtype, samples);
    const raw = await this.file.readAt(this.table!.offsets[index]!, count, what);
    let bytes: Buffer;
    try {
      bytes = await decodeChunk(page.compression, raw, samples * this.bytes, {
        width: page.chunkWidth,
        height: samples / page.chunkWidth / this.planeSamples,
        samples: this.planeSamples,
        jpegTables: page.jpegTables,
        littleEndian: this.file.littleEndian,
      });
    } catch (e) {
      if (e instanceof ChunkDecodeError) throw new IngestError('corrupt', `${what}: ${e.message}`);
      throw e;
    }
    const data = this.view(bytes);
    if (page.predictor === 2) {
      if (data instanceof Float32Array) throw new IngestError('unsupported', `${page.where}: horizontal predictor on float samples`);
      undoHorizontalPredictor(data, page.chunkWidth * this.planeSamples, this.planeSamples);
    }
    return data;
  }

  /** Typed view in native (little-endian) order; copies when misaligned, swaps big-endian files. */
  private view(buf: Buffer): PixelArray {
    const b = this.bytes;
    let bytes = buf.byteOffset % b === 0 ? buf : Buffer.from(buf);
    if (!this.file.littleEndian && b > 1) {
      if (bytes === buf) bytes = Buffer.from(buf); // never swap a caller's buffer in place
      if (b === 2) bytes.swap16();
      else bytes.swap32();
    }
    const n = bytes.byteLength / b;
    if (this.dtype === 'uint8') return new Uint8Array(bytes.buffer, bytes.byteOffset, n);
    if (this.dtype === 'uint16') return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }
}
