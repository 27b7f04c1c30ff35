import { IngestError } from './errors';

export interface OmeChannel {
  name: string | undefined;
  /** "#rrggbb", from OME's signed 32-bit RGBA integer. */
  color: string | undefined;
  samplesPerPixel: number;
}

export interface OmeTiffData {
  ifd: number;
  firstZ: number;
  firstC: number;
  firstT: number;
  /** undefined: "all remaining planes" (only meaningful for a lone TiffData). */
  planeCount: number | undefined;
  fileName: string | undefined;
}

export interface OmeImage {
  name: string | undefined;
  sizeX: number;
  sizeY: number;
  sizeZ: number;
  sizeC: number;
  sizeT: number;
  dimensionOrder: string;
  type: string;
  physicalSize: { x: number; y: number; z?: number; unit: string } | undefined;
  channels: OmeChannel[];
  tiffData: OmeTiffData[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|\w+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of tag.matchAll(/([\w:.-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) out.set(m[1]!.replace(/^\w+:/, ''), unescapeXml(m[3] ?? m[4] ?? ''));
  return out;
}

/** OME Color is a signed 32-bit integer holding RGBA; the alpha byte is ignored. */
export function omeColorToHex(value: number): string {
  const u = value >>> 0;
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `#${hex((u >>> 24) & 255)}${hex((u >>> 16) & 255)}${hex((u >>> 8) & 255)}`;
}

export function isOmeXml(description: string | undefined): description is string {
  return description !== undefined && /<(\w+:)?OME[\s>]/.test(description);
}

/**
 * The first Image of an OME-XML document: what the ingest needs, found with a tolerant scan of
 * the elements (namespace prefixes allowed) rather than a full XML parser. Only the first image
 * is ingested; other series (e.g. a label or macro image) are ignored.
 */
export function parseOmeXml(xml: string): OmeImage {
  const el = (name: string) => new RegExp(`<(?:\\w+:)?${name}\\b([^>]*?)(/?)>`, 'g');
  const imageMatch = el('Image').exec(xml);
  if (!imageMatch) throw new IngestError('corrupt', 'OME-XML has no Image element');
  const imageEnd = xml.indexOf('Image>', imageMatch.index + imageMatch[0].length);
  const image = xml.slice(imageMatch.index, imageEnd === -1 ? undefined : imageEnd);
  const pixelsMatch = el('Pixels').exec(image);
  if (!pixelsMatch) throw new IngestError('corrupt', 'OME-XML Image has no Pixels element');
  const px = attributes(pixelsMatch[1]!);
  const int = (key: string, fallback?: number): number => {
    const raw = px.get(key);
    if (raw === undefined) {
      if (fallback !== undefined) return fallback;
      throw new IngestError('corrupt', `OME-XML Pixels has no ${key}`);
    }
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1) throw new IngestError('corrupt', `OME-XML Pixels ${key}="${raw}" is not a positive integer`);
    return v;
  };
  const dimensionOrder = (px.get('DimensionOrder') ?? 'XYZCT').toUpperCase();
  if (!/^XY(ZCT|ZTC|CZT|CTZ|TZC|TCZ)$/.test(dimensionOrder)) throw new IngestError('corrupt', `OME-XML DimensionOrder "${dimensionOrder}" is not valid`);
  const physical = (key: string) => {
    const v = Number(px.get(key));
    return Number.isFinite(v) && v > 0 ? v : undefined;
  };
  const psx = physical('PhysicalSizeX');
  const psy = physical('PhysicalSizeY');
  const psz = physical('PhysicalSizeZ');
  const channels: OmeChannel[] = [];
  for (const m of image.matchAll(el('Channel'))) {
    const a = attributes(m[1]!);
    const color = a.get('Color');
    channels.push({
      name: a.get('Name') ?? a.get('Fluor'),
      color: color !== undefined && /^-?\d+$/.test(color) ? omeColorToHex(Number(color)) : undefined,
      samplesPerPixel: Number(a.get('SamplesPerPixel') ?? 1) || 1,
    });
  }
  const tiffData: OmeTiffData[] = [];
  const tdRe = /<(?:\w+:)?TiffData\b([^>]*?)(\/>|>([\s\S]*?)<\/(?:\w+:)?TiffData>)/g;
  for (const m of image.matchAll(tdRe)) {
    const a = attributes(m[1]!);
    const inner = m[3] ?? '';
    const uuid = /<(?:\w+:)?UUID\b([^>]*)>/.exec(inner);
    const num = (k: string) => (a.has(k) ? Number(a.get(k)) : undefined);
    tiffData.push({
      ifd: num('IFD') ?? 0,
      firstZ: num('FirstZ') ?? 0,
      firstC: num('FirstC') ?? 0,
      firstT: num('FirstT') ?? 0,
      planeCount: num('PlaneCount'),
      fileName: uuid ? attributes(uuid[1]!).get('FileName') : undefined,
    });
  }
  return {
    name: attributes(imageMatch[1]!).get('Name'),
    sizeX: int('SizeX'),
    sizeY: int('SizeY'),
    sizeZ: int('SizeZ', 1),
    sizeC: int('SizeC', 1),
    sizeT: int('SizeT', 1),
    dimensionOrder,
    type: (px.get('Type') ?? '').toLowerCase(),
    physicalSize: psx && psy ? { x: psx, y: psy, ...(psz ? { z: psz } : {}), unit: px.get('PhysicalSizeXUnit') ?? 'µm' } : undefined,
    channels,
    tiffData,
  };
}

/** Index of plane (z, c, t) in DimensionOrder: the letters after XY run fastest to slowest. */
export function planeIndex(order: string, sizes: { z: number; c: number; t: number }, at: { z: number; c: number; t: number }): number {
  const dims = order.slice(2).toLowerCase().split('') as Array<'z' | 'c' | 't'>;
  let index = 0;
  let stride = 1;
  for (const d of dims) {
    index += at[d] * stride;
    stride *= sizes[d];
  }
  return index;
}

/**
 * Page (IFD index) of every plane, by plane index in DimensionOrder. Without TiffData elements,
 * plane i is page i; with them, each block of PlaneCount planes starting at (FirstZ, FirstC,
 * FirstT) maps to consecutive pages from IFD. Unmapped planes are undefined.
 */
export function planePages(img: OmeImage, planes: number, sizes: { z: number; c: number; t: number }, ownFileName: string): Array<number | undefined> {
  const pages = new Array<number | undefined>(planes).fill(undefined);
  if (img.tiffData.length === 0) return pages.map((_, i) => i);
  for (const td of img.tiffData) {
    if (td.fileName !== undefined && td.fileName !== ownFileName) {
      throw new IngestError('unsupported', `multi-file OME-TIFF: planes are stored in "${td.fileName}"; ingest a single-file OME-TIFF`);
    }
    const start = planeIndex(img.dimensionOrder, sizes, { z: td.firstZ, c: td.firstC, t: td.firstT });
    const count = td.planeCount ?? (img.tiffData.length === 1 && td.firstZ + td.firstC + td.firstT === 0 ? planes : 1);
    for (let k = 0; k < count && start + k < planes; k++) pages[start + k] = td.ifd + k;
  }
  return pages;
}
