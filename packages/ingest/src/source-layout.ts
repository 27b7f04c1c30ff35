import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { DType } from '@tilefarm/contracts';
import { IngestError } from './errors';
import { readRasterInfo, type RasterInfo } from './raster-decoder';
import { isOmeXml, parseOmeXml, planeIndex, planePages } from './ome-xml';
import { pageDType, checkPageDecodable, isColourPage, openSourceFile, TiffFile, type ChunkTable, type TiffPage } from './tiff/tiff-file';

/**
 * One unit of ingest work: one page of the file (one plane, z and t fixed) and the dataset
 * channels it holds: one for planar OME-TIFF pages, three for an RGB page. Units are independent,
 * so workers can share them.
 */
export interface PlaneUnit {
  z: number;
  t: number;
  /** Dataset channel indices this unit writes... */
  channels: number[];
  /** ...and the sample index within the page for each of them. */
  samples: number[];
  /** Byte offset of the page's IFD (TIFF), so a worker parses only its own page. */
  ifdOffset: number;
  where: string;
  /** Bytes of the file this unit decodes (its strips/tiles at every native level; the whole file for PNG/JPEG): what its written bytes are bounded against. */
  sourceBytes: number;
}

/** What a source file holds, found by reading headers only. Plain JSON: it travels in job payloads. */
export interface SourceLayout {
  format: 'ome-tiff' | 'imagej-tiff' | 'tiff' | 'raster';
  width: number;
  height: number;
  sizeZ: number;
  sizeC: number;
  sizeT: number;
  dtype: DType;
  /** Levels stored in the file (1 + usable SubIFDs), each plain 2× smaller (ceil). */
  nativeLevels: number;
  channels: Array<{ label: string | undefined; color: string | undefined }>;
  rgb: boolean;
  name: string | undefined;
  physicalSize: { x: number; y: number; z?: number; unit: string } | undefined;
  units: PlaneUnit[];
  /** Things the user should know that did not stop the ingest (e.g. OME-XML ignored on request). */
  warnings: string[];
}

const OME_TYPES: Record<string, DType> = { uint8: 'uint8', uint16: 'uint16', float: 'float32' };

async function isTiff(path: string): Promise<boolean> {
  const handle = await openSourceFile(path);
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    const s = head.toString('latin1');
    return s === 'II*\0' || s === 'MM\0*' || s === 'II+\0' || s === 'MM\0+';
  } finally {
    await handle.close();
  }
}

export interface LayoutLimits {
  /** Largest width × height × planes × channels accepted (decompression bombs, runaway jobs). */
  maxSourcePixels: number;
  /**
   * Read an OME-TIFF's pages as a plain TIFF (pages = z), for files whose OME-XML does not
   * describe them (e.g. copied from another file). A warning says what was dropped.
   */
  ignoreOmeXml?: boolean;
}

/** How to get past an OME-XML that does not match its file, named in every such error. */
export const IGNORE_OME_XML_HINT = 'to ingest the pages as a plain TIFF instead (OME channel names, colours, sizes and order dropped), pass --ignore-ome-xml to the CLI or "ignoreOmeXml": true to POST /v1/datasets';

/** Inspects `path` (headers, IFDs and strip tables only) and describes it, or throws IngestError. */
export async function readSourceLayout(path: string, limits: LayoutLimits): Promise<SourceLayout> {
  return (await isTiff(path)) ? await tiffLayout(path, limits) : await rasterLayout(path, limits);
}

async function omeOrPlainLayout(file: TiffFile, offsets: number[], first: TiffPage, fileName: string, limits: LayoutLimits): Promise<SourceLayout> {
  if (limits.ignoreOmeXml) {
    const layout = await plainLayout(file, offsets, first);
    layout.warnings.push(`the file's OME-XML was ignored as asked: its ${layout.units.length} page(s) were read as a plain TIFF (pages = z), without the OME-XML's channel names, colours, physical size or Z/C/T order`);
    return layout;
  }
  try {
    return await omeLayout(file, offsets, first, fileName);
  } catch (e) {
    if (e instanceof IngestError && e.problem === 'ome_mismatch') throw new IngestError('ome_mismatch', `${e.message}; ${IGNORE_OME_XML_HINT}`);
    throw e;
  }
}

function checkLimit(path: string, layout: SourceLayout, limits: LayoutLimits): void {
  const total = layout.width * layout.height * layout.sizeZ * layout.sizeT * layout.sizeC;
  if (total > limits.maxSourcePixels) {
    throw new IngestError('too_large', `${basename(path)} is ${layout.width}×${layout.height} × ${layout.sizeZ} z × ${layout.sizeT} t × ${layout.sizeC} channels = ${total} samples, over the limit of ${limits.maxSourcePixels} (maxSourcePixels)`);
  }
}

async function tiffLayout(path: string, limits: LayoutLimits): Promise<SourceLayout> {
  const file = await TiffFile.open(path);
  try {
    const offsets = await file.pageOffsets();
    const first = await file.readPage(offsets[0]!, 'page 0');
    const layout = isOmeXml(first.description)
      ? await omeOrPlainLayout(file, offsets, first, basename(path), limits)
      : await plainLayout(file, offsets, first);
    checkLimit(path, layout, limits);
    // Reading every unit's strip table now makes a truncated file fail before any tile is written,
    // and lets aliasing be found: chunks sharing bytes, or planes sharing a page (decompression bombs).
    const chunks = new ChunkRanges();
    const planeOfPage = new Map<number, string>();
    for (const unit of layout.units) {
      const other = planeOfPage.get(unit.ifdOffset);
      if (other !== undefined) throw new IngestError('corrupt', `${unit.where} holds plane z=${unit.z} t=${unit.t} and also ${other}: planes sharing a page are refused (aliasing, a decompression bomb pattern)`);
      planeOfPage.set(unit.ifdOffset, `plane z=${unit.z} t=${unit.t}`);
      const page = await file.readPage(unit.ifdOffset, unit.where);
      unit.sourceBytes = chunks.add(page, await file.chunkTable(page));
      for (let k = 1; k < layout.nativeLevels; k++) {
        const sub = await file.readPage(page.subIfdOffsets[k - 1]!, `${unit.where}, reduced level ${k}`);
        unit.sourceBytes += chunks.add(sub, await file.chunkTable(sub));
      }
    }
    chunks.checkDisjoint();
    return layout;
  } finally {
    await file.close();
  }
}

/**
 * Every strip/tile byte range the ingest will decode. In a well-formed file they are disjoint; a
 * file whose chunks point at the same bytes (128 strips → one deflate strip) makes a few KB
 * decode to gigabytes, so overlapping non-empty ranges are refused. Empty chunks (sparse files) are
 * skipped. Typed arrays: whole-slide files have millions of tiles.
 */
class ChunkRanges {
  private offsets = new Float64Array(1024);
  private counts = new Float64Array(1024);
  private owners = new Uint32Array(1024);
  private readonly pages: TiffPage[] = [];
  private n = 0;

  /** Records a page's chunks; returns their total bytes. */
  add(page: TiffPage, table: ChunkTable): number {
    const owner = this.pages.push(page) - 1;
    let bytes = 0;
    for (let i = 0; i < table.offsets.length; i++) {
      const count = table.counts[i]!;
      bytes += count;
      if (count === 0) continue;
      if (this.n === this.offsets.length) this.grow();
      this.offsets[this.n] = table.offsets[i]!;
      this.counts[this.n] = count;
      this.owners[this.n] = owner;
      this.n++;
    }
    return bytes;
  }

  checkDisjoint(): void {
    const order = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    const offsets = this.offsets;
    order.sort((a, b) => offsets[a]! - offsets[b]! || a - b);
    let reach = -1;
    let reacher = 0;
    for (const k of order) {
      if (offsets[k]! < reach) {
        const [a, b] = [this.describeChunk(reacher), this.describeChunk(k)];
        throw new IngestError('corrupt', `${b} overlaps ${a}: chunks sharing bytes are refused (aliasing, a decompression bomb pattern)`);
      }
      reach = offsets[k]! + this.counts[k]!;
      reacher = k;
    }
  }

  private describeChunk(k: number): string {
    const page = this.pages[this.owners[k]!]!;
    // Which chunk of its page: chunks of one page were added in order, so count back.
    let i = 0;
    for (let j = k - 1; j >= 0 && this.owners[j] === this.owners[k]; j--) i++;
    return `${page.where} ${page.tiled ? 'tile' : 'strip'} #${i} (bytes ${this.offsets[k]}–${this.offsets[k]! + this.counts[k]!})`;
  }

  private grow(): void {
    const size = this.offsets.length * 2;
    const [o, c, w] = [new Float64Array(size), new Float64Array(size), new Uint32Array(size)];
    o.set(this.offsets);
    c.set(this.counts);
    w.set(this.owners);
    [this.offsets, this.counts, this.owners] = [o, c, w];
  }
}

function describe(p: TiffPage): string {
  return `${p.width}×${p.height}, ${p.samplesPerPixel} sample(s) of ${p.bitsPerSample} bits`;
}

/** Reduced levels usable from a page's SubIFDs: each exactly ceil(size / 2^k) and of the same type. */
async function nativeLevelsOf(file: TiffFile, page: TiffPage): Promise<number> {
  let levels = 1;
  for (const offset of page.subIfdOffsets) {
    const sub = await file.readPage(offset, `${page.where}, reduced level ${levels}`);
    const f = 2 ** levels;
    if (sub.width !== Math.ceil(page.width / f) || sub.height !== Math.ceil(page.height / f)) break;
    if (sub.samplesPerPixel !== page.samplesPerPixel || sub.bitsPerSample !== page.bitsPerSample || sub.sampleFormat !== page.sampleFormat || sub.planar !== page.planar) break;
    try {
      checkPageDecodable(sub);
    } catch {
      break;
    }
    levels++;
  }
  return levels;
}

function checkSamePage(page: TiffPage, ref: TiffPage, what: string): void {
  if (page.width !== ref.width || page.height !== ref.height || page.samplesPerPixel !== ref.samplesPerPixel || page.bitsPerSample !== ref.bitsPerSample || page.sampleFormat !== ref.sampleFormat) {
    throw new IngestError('ome_mismatch', `${page.where} is ${describe(page)} but ${what} is ${describe(ref)}`);
  }
}

async function omeLayout(file: TiffFile, offsets: number[], first: TiffPage, fileName: string): Promise<SourceLayout> {
  const img = parseOmeXml(first.description!);
  const dtype = OME_TYPES[img.type];
  if (!dtype) throw new IngestError('unsupported', `OME pixel type "${img.type}" is not supported (uint8, uint16 and float are)`);
  const spp = first.samplesPerPixel;
  if (img.sizeC % spp !== 0) throw new IngestError('ome_mismatch', `OME-XML says SizeC=${img.sizeC} but pages have ${spp} samples per pixel`);
  const sizes = { z: img.sizeZ, c: img.sizeC / spp, t: img.sizeT };
  const planes = sizes.z * sizes.c * sizes.t;
  const pages = planePages(img, planes, sizes, fileName);
  const units: PlaneUnit[] = [];
  let ref: TiffPage | undefined;
  for (let t = 0; t < sizes.t; t++) {
    for (let z = 0; z < sizes.z; z++) {
      for (let cp = 0; cp < sizes.c; cp++) {
        const p = planeIndex(img.dimensionOrder, sizes, { z, c: cp, t });
        const pageIndex = pages[p];
        if (pageIndex === undefined) throw new IngestError('ome_mismatch', `OME-XML maps no page to plane z=${z} c=${cp} t=${t}`);
        const offset = offsets[pageIndex];
        if (offset === undefined) {
          throw new IngestError('ome_mismatch', `OME-XML says ${planes} planes (SizeZ=${img.sizeZ} SizeC=${img.sizeC} SizeT=${img.sizeT}) and puts plane z=${z} c=${cp} t=${t} on page ${pageIndex}, but the file has only ${offsets.length} pages`);
        }
        const where = `page ${pageIndex}`;
        const page = pageIndex === 0 ? first : await file.readPage(offset, where);
        if (page.width !== img.sizeX || page.height !== img.sizeY) {
          throw new IngestError('ome_mismatch', `OME-XML says planes are ${img.sizeX}×${img.sizeY} but ${where} is ${page.width}×${page.height}`);
        }
        const pageType = pageDType(page);
        if (pageType !== dtype) throw new IngestError('ome_mismatch', `OME-XML says pixel type ${img.type} but ${where} holds ${pageType}`);
        if (ref) checkSamePage(page, ref, 'the page of plane 0');
        ref ??= page;
        checkPageDecodable(page);
        const channels = Array.from({ length: spp }, (_, s) => cp * spp + s);
        units.push({ z, t, channels, samples: channels.map((_, s) => s), ifdOffset: offset, where, sourceBytes: 0 });
      }
    }
  }
  const nativeLevels = await nativeLevelsOf(file, ref!);
  const channels = Array.from({ length: img.sizeC }, (_, c) => {
    // One Channel element may stand for several samples (RGB): name them after it.
    const ch = img.channels.length === img.sizeC ? img.channels[c] : img.channels[Math.floor(c / spp)];
    const suffix = img.channels.length !== img.sizeC && spp === 3 ? ` ${'RGB'[c % 3]}` : '';
    return { label: ch?.name ? `${ch.name}${suffix}` : undefined, color: img.channels.length === img.sizeC ? ch?.color : undefined };
  });
  return {
    format: 'ome-tiff',
    width: img.sizeX,
    height: img.sizeY,
    sizeZ: img.sizeZ,
    sizeC: img.sizeC,
    sizeT: img.sizeT,
    dtype,
    nativeLevels,
    channels,
    rgb: spp === 3 && isColourPage(first),
    name: img.name,
    physicalSize: img.physicalSize,
    units,
    warnings: [],
  };
}

/** ImageJ hyperstacks say "channels=C slices=Z frames=T" in their description; pages run c fastest, then z, then t. */
function imageJSizes(description: string | undefined): { c: number; z: number; t: number } | undefined {
  if (!description?.startsWith('ImageJ=')) return undefined;
  const get = (k: string) => Number(new RegExp(`^${k}=(\\d+)$`, 'm').exec(description)?.[1] ?? 1);
  return { c: get('channels'), z: get('slices'), t: get('frames') };
}

async function plainLayout(file: TiffFile, offsets: number[], first: TiffPage): Promise<SourceLayout> {
  const dtype = pageDType(first);
  checkPageDecodable(first);
  // Reduced-resolution pages in the main chain (NewSubfileType bit 0) are thumbnails or old-style pyramid levels, not planes.
  const pages: Array<{ page: TiffPage; offset: number; index: number }> = [];
  for (let i = 0; i < offsets.length; i++) {
    const page = i === 0 ? first : await file.readPage(offsets[i]!, `page ${i}`);
    if (page.newSubfileType & 1) continue;
    checkSamePage(page, first, 'page 0');
    pages.push({ page, offset: offsets[i]!, index: i });
  }
  const rgb = isColourPage(first);
  // RGBA and other extra samples (alpha) are dropped: a viewer composites channels itself.
  const keep = rgb ? 3 : first.samplesPerPixel - first.extraSamples > 0 ? first.samplesPerPixel - first.extraSamples : first.samplesPerPixel;
  const ij = imageJSizes(first.description);
  let sizes = { c: 1, z: pages.length, t: 1 };
  if (ij && keep === 1 && ij.c * ij.z * ij.t === pages.length) sizes = ij;
  else if (ij && keep === 1 && ij.c * ij.z * ij.t !== pages.length) {
    throw new IngestError('ome_mismatch', `ImageJ description says ${ij.c} channels × ${ij.z} slices × ${ij.t} frames but the file has ${pages.length} pages`);
  }
  const units: PlaneUnit[] = [];
  pages.forEach(({ offset, index }, i) => {
    const c = i % sizes.c;
    const z = Math.floor(i / sizes.c) % sizes.z;
    const t = Math.floor(i / (sizes.c * sizes.z));
    const channels = sizes.c > 1 ? [c] : Array.from({ length: keep }, (_, s) => s);
    units.push({ z, t, channels, samples: sizes.c > 1 ? [0] : channels.slice(), ifdOffset: offset, where: `page ${index}`, sourceBytes: 0 });
  });
  const sizeC = sizes.c > 1 ? sizes.c : keep;
  return {
    format: ij ? 'imagej-tiff' : 'tiff',
    width: first.width,
    height: first.height,
    sizeZ: sizes.z,
    sizeC,
    sizeT: sizes.t,
    dtype,
    nativeLevels: await nativeLevelsOf(file, first),
    channels: Array.from({ length: sizeC }, () => ({ label: undefined, color: undefined })),
    rgb,
    name: undefined,
    physicalSize: undefined,
    units,
    warnings: [],
  };
}

/** Largest PNG/JPEG/WebP accepted: sharp decodes these whole (packages/ingest/README.md, "Memory bound"). */
export const MAX_RASTER_PIXELS = 268_402_689;

async function rasterLayout(path: string, limits: LayoutLimits): Promise<SourceLayout> {
  let meta: RasterInfo;
  let fileBytes: number;
  try {
    fileBytes = (await stat(path)).size;
    meta = await readRasterInfo(path);
  } catch (e) {
    throw new IngestError('unsupported', `${basename(path)} is not a TIFF and sharp cannot read it: ${(e as Error).message}`);
  }
  const { width, height } = meta;
  if (width * height > Math.min(MAX_RASTER_PIXELS, limits.maxSourcePixels)) {
    throw new IngestError('too_large', `${basename(path)} is ${width}×${height} ${meta.format}: images other than TIFF are decoded whole and may have at most ${Math.min(MAX_RASTER_PIXELS, limits.maxSourcePixels)} pixels (convert it to a tiled TIFF)`);
  }
  const colour = meta.channels - (meta.hasAlpha ? 1 : 0) >= 3;
  const sizeC = colour ? 3 : 1;
  const dtype: DType = meta.depth === 'ushort' ? 'uint16' : meta.depth === 'uchar' ? 'uint8' : 'uint8';
  if (meta.depth !== 'uchar' && meta.depth !== 'ushort') throw new IngestError('unsupported', `${basename(path)}: ${meta.format} with ${meta.depth} samples is not supported`);
  const channels = Array.from({ length: sizeC }, () => ({ label: undefined, color: undefined }));
  return {
    format: 'raster',
    width,
    height,
    sizeZ: 1,
    sizeC,
    sizeT: 1,
    dtype,
    nativeLevels: 1,
    channels,
    rgb: colour,
    name: undefined,
    physicalSize: undefined,
    units: [{ z: 0, t: 0, channels: channels.map((_, i) => i), samples: channels.map((_, i) => i), ifdOffset: 0, where: meta.format ?? 'image', sourceBytes: fileBytes }],
    warnings: [],
  };
}
