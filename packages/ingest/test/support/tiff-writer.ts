import { closeSync, openSync, writeSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

/**
 * A small independent TIFF writer for tests and the benchmark: classic TIFF, strips or tiles,
 * none/deflate/PackBits, optional horizontal predictor, big- or little-endian, SubIFDs for
 * reduced levels. Pixel data is pulled row band by row band from `rows()` and written
 * sequentially, IFDs last, so multi-GB files are written in bounded memory.
 */
export type Samples = Uint8Array | Uint16Array | Int16Array | Float32Array;

export interface PageSpec {
  width: number;
  height: number;
  /** Bits per sample and SampleFormat (1 uint, 2 int, 3 float). */
  bits: 8 | 16 | 32;
  sampleFormat?: 1 | 2 | 3;
  samples?: number;
  planar?: 1 | 2;
  photometric?: number;
  compression?: 'none' | 'deflate' | 'packbits';
  predictor?: 1 | 2;
  tile?: number;
  rowsPerStrip?: number;
  description?: string;
  /** Rows [y0, y1), samples interleaved. */
  rows(y0: number, y1: number): Samples;
  subIfds?: PageSpec[];
  /** Lie in the header: write this width/height instead of the real one (bomb tests). */
  claimWidth?: number;
  claimHeight?: number;
  /** Rewrites the strip/tile table once the data is written (aliasing bomb tests). */
  rewriteChunks?(offsets: number[], counts: number[]): void;
}

export interface WriteOptions {
  bigEndian?: boolean;
}

interface Written {
  spec: PageSpec;
  offsets: number[];
  counts: number[];
  subOffsets: number[];
}

function packBits(data: Buffer): Buffer {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    let run = 1;
    while (i + run < data.length && run < 128 && data[i + run] === data[i]) run++;
    if (run > 1) {
      out.push((1 - run) & 255, data[i]!);
      i += run;
    } else {
      let n = 1;
      while (i + n < data.length && n < 128 && data[i + n] !== data[i + n - 1]) n++;
      out.push(n - 1);
      for (let k = 0; k < n; k++) out.push(data[i + k]!);
      i += n;
    }
  }
  return Buffer.from(out);
}

export function writeTiff(path: string, pages: PageSpec[], options: WriteOptions = {}): void {
  const be = options.bigEndian ?? false;
  const fd = openSync(path, 'w');
  let pos = 0;
  const write = (buf: Buffer) => {
    writeSync(fd, buf, 0, buf.length, pos);
    pos += buf.length;
  };
  try {
    write(Buffer.alloc(8));
    const encode = (spec: PageSpec, arr: Samples, rowLen: number, spp: number): Buffer => {
      let a = arr;
      if (spec.predictor === 2) {
        a = arr.slice() as Samples;
        for (let r = 0; r < a.length / rowLen; r++) for (let i = r * rowLen + rowLen - 1; i >= r * rowLen + spp; i--) a[i] = a[i]! - a[i - spp]!;
      }
      let bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      if (be && a.BYTES_PER_ELEMENT > 1) {
        bytes = Buffer.from(bytes);
        if (a.BYTES_PER_ELEMENT === 2) bytes.swap16();
        else bytes.swap32();
      }
      if (spec.compression === 'deflate') return deflateSync(bytes);
      if (spec.compression === 'packbits') return packBits(bytes);
      return bytes;
    };
    const writeData = (spec: PageSpec): Written => {
      const spp = spec.samples ?? 1;
      const planar = spec.planar ?? 1;
      const offsets: number[] = [];
      const counts: number[] = [];
      const planes = planar === 2 ? spp : 1;
      const ps = planar === 2 ? 1 : spp;
      const pick = (arr: Samples, s: number): Samples => {
        if (planar !== 2) return arr;
        const out = new (arr.constructor as new (n: number) => Samples)(arr.length / spp);
        for (let i = 0; i < out.length; i++) out[i] = arr[i * spp + s]!;
        return out;
      };
      for (let s = 0; s < planes; s++) {
        if (spec.tile) {
          const t = spec.tile;
          for (let y0 = 0; y0 < spec.height; y0 += t) {
            const band = pick(spec.rows(y0, Math.min(spec.height, y0 + t)), s);
            const bandRows = band.length / (spec.width * ps);
            for (let x0 = 0; x0 < spec.width; x0 += t) {
              const tile = new (band.constructor as new (n: number) => Samples)(t * t * ps);
              for (let r = 0; r < bandRows; r++) {
                const w = Math.min(t, spec.width - x0) * ps;
                tile.set(band.subarray((r * spec.width + x0) * ps, (r * spec.width + x0) * ps + w), r * t * ps);
              }
              const body = encode(spec, tile, t * ps, ps);
              offsets.push(pos);
              counts.push(body.length);
              write(body);
            }
          }
        } else {
          const rps = spec.rowsPerStrip ?? spec.height;
          for (let y0 = 0; y0 < spec.height; y0 += rps) {
            const body = encode(spec, pick(spec.rows(y0, Math.min(spec.height, y0 + rps)), s), spec.width * ps, ps);
            offsets.push(pos);
            counts.push(body.length);
            write(body);
          }
        }
      }
      spec.rewriteChunks?.(offsets, counts);
      const subs = (spec.subIfds ?? []).map(writeData);
      const subOffsets = subs.map((w) => writeIfd(w, true, 0));
      return { spec, offsets, counts, subOffsets };
    };
    // Writes one IFD (entries sorted by tag, long values after it); returns its offset.
    const writeIfd = (w: Written, reduced: boolean, next: number): number => {
      const { spec } = w;
      const spp = spec.samples ?? 1;
      const entries: Array<[number, number, number[] | Buffer]> = []; // tag, type, values
      if (reduced) entries.push([254, 4, [1]]);
      entries.push([256, 4, [spec.claimWidth ?? spec.width]], [257, 4, [spec.claimHeight ?? spec.height]]);
      entries.push([258, 3, new Array<number>(spp).fill(spec.bits)]);
      entries.push([259, 3, [spec.compression === 'deflate' ? 8 : spec.compression === 'packbits' ? 32773 : 1]]);
      entries.push([262, 3, [spec.photometric ?? (spp >= 3 ? 2 : 1)]]);
      if (spec.description !== undefined) entries.push([270, 2, Buffer.from(`${spec.description}\0`, 'utf8')]);
      if (!spec.tile) entries.push([273, 4, w.offsets]);
      entries.push([277, 3, [spp]]);
      if (!spec.tile) entries.push([278, 4, [spec.rowsPerStrip ?? spec.height]], [279, 4, w.counts]);
      entries.push([284, 3, [spec.planar ?? 1]]);
      if (spec.predictor === 2) entries.push([317, 3, [2]]);
      if (spec.tile) entries.push([322, 4, [spec.tile]], [323, 4, [spec.tile]], [324, 4, w.offsets], [325, 4, w.counts]);
      if (w.subOffsets.length) entries.push([330, 4, w.subOffsets]);
      entries.push([339, 3, new Array<number>(spp).fill(spec.sampleFormat ?? (spec.bits === 32 ? 3 : 1))]);
      entries.sort((a, b) => a[0] - b[0]);
      if (pos % 2) write(Buffer.alloc(1));
      const ifdAt = pos;
      const size = 2 + entries.length * 12 + 4;
      const ifd = Buffer.alloc(size);
      const extra: Buffer[] = [];
      let extraAt = ifdAt + size;
      const u16 = (b: Buffer, v: number, o: number) => (be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o));
      const u32 = (b: Buffer, v: number, o: number) => (be ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o));
      u16(ifd, entries.length, 0);
      entries.forEach(([tag, type, values], i) => {
        const o = 2 + i * 12;
        const isBuf = Buffer.isBuffer(values);
        const n = isBuf ? values.length : values.length;
        const unit = type === 3 ? 2 : type === 2 ? 1 : 4;
        const data = Buffer.alloc(n * unit);
        if (isBuf) values.copy(data);
        else values.forEach((v, k) => (unit === 2 ? u16(data, v, k * 2) : u32(data, v, k * 4)));
        u16(ifd, tag, o);
        u16(ifd, type, o + 2);
        u32(ifd, n, o + 4);
        if (data.length <= 4) data.copy(ifd, o + 8);
        else {
          u32(ifd, extraAt, o + 8);
          extra.push(data);
          extraAt += data.length;
        }
      });
      u32(ifd, next, size - 4);
      write(ifd);
      for (const e of extra) write(e);
      return ifdAt;
    };
    const written = pages.map(writeData);
    // Main chain written back to front so each IFD knows its successor.
    let next = 0;
    for (let i = written.length - 1; i >= 0; i--) next = writeIfd(written[i]!, false, next);
    const header = Buffer.alloc(8);
    header.write(be ? 'MM' : 'II', 0, 'latin1');
    if (be) {
      header.writeUInt16BE(42, 2);
      header.writeUInt32BE(next, 4);
    } else {
      header.writeUInt16LE(42, 2);
      header.writeUInt32LE(next, 4);
    }
    writeSync(fd, header, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
}

/** Deterministic test pattern: distinct per (page, y, x), fits in 16 bits. */
export function pattern(page: number, y: number, x: number, max = 65535): number {
  return (page * 7919 + y * 131 + x * 17 + ((x * y) % 97)) % (max + 1);
}

export function patternRows(page: number, width: number, bits: 8 | 16, spp = 1): (y0: number, y1: number) => Samples {
  return (y0, y1) => {
    const out = bits === 8 ? new Uint8Array((y1 - y0) * width * spp) : new Uint16Array((y1 - y0) * width * spp);
    for (let y = y0; y < y1; y++) for (let x = 0; x < width; x++) for (let s = 0; s < spp; s++) out[((y - y0) * width + x) * spp + s] = pattern(page * spp + s, y, x, bits === 8 ? 255 : 65535);
    return out;
  };
}
