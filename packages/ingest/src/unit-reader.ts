import type { PixelArray } from '@tilefarm/contracts';
import { allocPixels } from '@tilefarm/datasets';
import { IngestError } from './errors';
import { decodeRaster } from './raster-decoder';
import type { PlaneUnit, SourceLayout } from './source-layout';
import { PageReader } from './tiff/page-reader';
import { TiffFile } from './tiff/tiff-file';

/** Rows of one level of one unit, top to bottom: one array per unit channel. */
export interface LevelReader {
  width: number;
  height: number;
  readRows(y0: number, y1: number): Promise<PixelArray[]>;
}

export interface UnitReader {
  level(k: number): Promise<LevelReader>;
  close(): Promise<void>;
}

export async function openUnit(path: string, layout: SourceLayout, unit: PlaneUnit): Promise<UnitReader> {
  return layout.format === 'raster' ? openRaster(path, layout, unit) : openTiffUnit(path, layout, unit);
}

async function openTiffUnit(path: string, layout: SourceLayout, unit: PlaneUnit): Promise<UnitReader> {
  const file = await TiffFile.open(path);
  try {
    const page = await file.readPage(unit.ifdOffset, unit.where);
    return {
      async level(k) {
        const offset = k === 0 ? unit.ifdOffset : page.subIfdOffsets[k - 1];
        if (offset === undefined) throw new IngestError('ome_mismatch', `${unit.where} has no reduced level ${k}, unlike the first page`);
        const target = k === 0 ? page : await file.readPage(offset, `${unit.where}, reduced level ${k}`);
        const f = 2 ** k;
        const w = Math.ceil(layout.width / f);
        const h = Math.ceil(layout.height / f);
        if (target.width !== w || target.height !== h) throw new IngestError('ome_mismatch', `${target.where} is ${target.width}×${target.height}, expected ${w}×${h}`);
        const reader = new PageReader(file, target);
        if (reader.dtype !== layout.dtype) throw new IngestError('ome_mismatch', `${target.where} holds ${reader.dtype}, expected ${layout.dtype}`);
        return {
          width: w,
          height: h,
          async readRows(y0, y1) {
            const all = await reader.readRows(y0, y1);
            return unit.samples.map((s) => {
              const a = all[s];
              if (!a) throw new IngestError('ome_mismatch', `${target.where} has no sample ${s}`);
              return a;
            });
          },
        };
      },
      close: () => file.close(),
    };
  } catch (e) {
    await file.close();
    throw e;
  }
}

/**
 * PNG/JPEG/WebP through sharp, decoded whole (bounded by MAX_RASTER_PIXELS): 8-bit or 16-bit,
 * grey or RGB, alpha dropped.
 */
async function openRaster(path: string, layout: SourceLayout, unit: PlaneUnit): Promise<UnitReader> {
  const sixteen = layout.dtype === 'uint16';
  const bands = layout.sizeC;
  let data: Buffer;
  try {
    const out = await decodeRaster(path, { maxPixels: layout.width * layout.height, bands: bands === 1 ? 1 : 3, sixteenBit: sixteen });
    if (out.channels !== bands || out.width !== layout.width || out.height !== layout.height) {
      throw new IngestError('corrupt', `${path}: decoded ${out.width}×${out.height}×${out.channels}, expected ${layout.width}×${layout.height}×${bands}`);
    }
    data = out.data;
  } catch (e) {
    if (e instanceof IngestError) throw e;
    throw new IngestError('corrupt', `${path}: sharp cannot decode it: ${(e as Error).message}`);
  }
  const aligned = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
  const samples: PixelArray = sixteen ? new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2) : new Uint8Array(aligned.buffer, aligned.byteOffset, aligned.byteLength);
  const { width, height } = layout;
  return {
    async level(k) {
      if (k !== 0) throw new RangeError('raster sources have one level');
      return {
        width,
        height,
        async readRows(y0, y1) {
          return unit.samples.map((s) => {
            const n = width * (y1 - y0);
            const out = allocPixels(layout.dtype, n);
            const base = y0 * width * bands + s;
            for (let i = 0; i < n; i++) out[i] = samples[base + i * bands]!;
            return out;
          });
        },
      };
    },
    async close() {},
  };
}
