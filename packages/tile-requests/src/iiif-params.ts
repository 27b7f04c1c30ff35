import { DatasetId, SpecId, TilefarmError, levelSize, type DatasetManifest, type ImageFormat, type RenderSpecInput } from '@tilefarm/contracts';
import type { PixelRect } from './region-placement';

/**
 * IIIF Image API 3.0 (https://iiif.io/api/image/3.0/): identifiers, the image request grammar and
 * info.json. Pure: no I/O; every error a TilefarmError naming the parameter, with IIIF's statuses:
 * 400 bad syntax or an impossible request, 501 a valid request for a feature not offered here
 * (rotation other than 0, mirroring, upscaling, bitonal, other formats).
 *
 * Identifier: `{dataset}` (the dataset's default rendering, z=0, t=0), or with `~`-separated
 * parts in any order: `{dataset}~{specId}~z{z}~t{t}`, e.g. `cells~s0123456789abcdef~z4`.
 */
export interface IiifIdentifier {
  dataset: string;
  specId?: string;
  z: number;
  t: number;
}

const INDEX = /^(0|[1-9]\d{0,6})$/;

export function parseIiifIdentifier(raw: string): IiifIdentifier {
  const [dataset = '', ...parts] = raw.split('~');
  if (!DatasetId.safeParse(dataset).success) throw new TilefarmError('dataset_not_found', `identifier: no dataset "${dataset.slice(0, 64)}"`);
  const out: IiifIdentifier = { dataset, z: 0, t: 0 };
  const seen = new Set<string>();
  for (const part of parts) {
    const kind = part.startsWith('s') ? 'spec' : part.startsWith('z') ? 'z' : part.startsWith('t') ? 't' : '';
    if (!kind || seen.has(kind)) throw new TilefarmError('bad_request', `identifier: part "${part.slice(0, 40)}" is not one spec id, z{n} or t{n} (give each once)`);
    seen.add(kind);
    if (kind === 'spec') {
      if (!SpecId.safeParse(part).success) throw new TilefarmError('bad_request', `identifier: "${part.slice(0, 40)}" is not a spec id`);
      out.specId = part;
    } else {
      const n = part.slice(1);
      if (!INDEX.test(n)) throw new TilefarmError('bad_request', `identifier: ${kind} "${n.slice(0, 20)}" is not a non-negative integer`);
      out[kind] = Number(n);
    }
  }
  return out;
}

export function formatIiifIdentifier(id: IiifIdentifier): string {
  return [id.dataset, id.specId, id.z ? `z${id.z}` : undefined, id.t ? `t${id.t}` : undefined].filter(Boolean).join('~');
}

export type IiifQuality = 'default' | 'color' | 'gray';

export interface IiifImageRequest {
  region: PixelRect;
  width: number;
  height: number;
  quality: IiifQuality;
  format: ImageFormat;
}

export interface IiifLimits {
  maxWidth: number;
  maxHeight: number;
}

const NUM = /^\d+(\.\d+)?$/;
const FORMATS: Record<string, ImageFormat> = { jpg: 'jpeg', png: 'png', webp: 'webp' };
const OTHER_FORMATS = new Set(['tif', 'gif', 'pdf', 'jp2']);

function bad(param: string, why: string): never {
  throw new TilefarmError('bad_request', `${param}: ${why}`);
}

function unsupported(param: string, why: string): never {
  throw new TilefarmError('not_implemented', `${param}: ${why}`);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function ints(raw: string, param: string, count: number): number[] {
  const parts = raw.split(',');
  if (parts.length !== count || !parts.every((p) => INDEX.test(p))) bad(param, `${quote(raw)} is not ${count} comma-separated non-negative integers`);
  return parts.map(Number);
}

function parseRegion(raw: string, image: { width: number; height: number }): PixelRect {
  const { width: W, height: H } = image;
  if (raw === 'full') return { x: 0, y: 0, width: W, height: H };
  if (raw === 'square') {
    const side = Math.min(W, H);
    return { x: Math.floor((W - side) / 2), y: Math.floor((H - side) / 2), width: side, height: side };
  }
  let x: number, y: number, w: number, h: number;
  if (raw.startsWith('pct:')) {
    const parts = raw.slice(4).split(',');
    if (parts.length !== 4 || !parts.every((p) => NUM.test(p))) bad('region', `${quote(raw)} is not pct:x,y,w,h (non-negative numbers)`);
    const [px, py, pw, ph] = parts.map(Number) as [number, number, number, number];
    x = Math.round((px * W) / 100);
    y = Math.round((py * H) / 100);
    w = Math.round((pw * W) / 100);
    h = Math.round((ph * H) / 100);
  } else {
    if (!/^[\d,]+$/.test(raw)) bad('region', `${quote(raw)} is not full, square, x,y,w,h or pct:x,y,w,h`);
    [x, y, w, h] = ints(raw, 'region', 4) as [number, number, number, number];
  }
  if (w === 0 || h === 0) bad('region', `${quote(raw)} has zero width or height`);
  if (x >= W || y >= H) bad('region', `${quote(raw)} starts outside the ${W}x${H} image`);
  // The spec: a region reaching past the image is cropped to it.
  return { x, y, width: Math.min(w, W - x), height: Math.min(h, H - y) };
}

function parseSize(raw: string, region: PixelRect, limits: IiifLimits): { width: number; height: number } {
  if (raw.startsWith('^')) unsupported('size', 'upscaling (^) is not supported');
  const { width: rw, height: rh } = region;
  let w: number;
  let h: number;
  if (raw === 'max') {
    const scale = Math.min(1, limits.maxWidth / rw, limits.maxHeight / rh);
    return { width: Math.max(1, Math.floor(rw * scale)), height: Math.max(1, Math.floor(rh * scale)) };
  }
  if (raw === 'full') bad('size', '"full" is IIIF 2; version 3 says "max"');
  if (raw.startsWith('pct:')) {
    const n = raw.slice(4);
    if (!NUM.test(n)) bad('size', `${quote(raw)} is not pct:n`);
    const pct = Number(n);
    if (pct <= 0 || pct > 100) bad('size', `${quote(raw)}: n must be in (0, 100] without upscaling`);
    w = Math.max(1, Math.round((rw * pct) / 100));
    h = Math.max(1, Math.round((rh * pct) / 100));
  } else if (raw.startsWith('!')) {
    const [bw, bh] = ints(raw.slice(1), 'size', 2) as [number, number];
    if (bw === 0 || bh === 0) bad('size', `${quote(raw)} has a zero side`);
    const scale = Math.min(bw / rw, bh / rh, 1);
    w = Math.max(1, Math.min(bw, Math.round(rw * scale)));
    h = Math.max(1, Math.min(bh, Math.round(rh * scale)));
  } else if (/^\d+,$/.test(raw)) {
    w = Number(raw.slice(0, -1));
    h = Math.max(1, Math.round((rh * w) / rw));
  } else if (/^,\d+$/.test(raw)) {
    h = Number(raw.slice(1));
    w = Math.max(1, Math.round((rw * h) / rh));
  } else if (/^\d+,\d+$/.test(raw)) {
    [w, h] = ints(raw, 'size', 2) as [number, number];
  } else {
    bad('size', `${quote(raw)} is not max, w,, ,h, w,h, !w,h or pct:n`);
  }
  if (w === 0 || h === 0) bad('size', `${quote(raw)} gives an empty image`);
  if (w > rw || h > rh) bad('size', `${w}x${h} is larger than the ${rw}x${rh} region; upscaling (^) is not supported`);
  if (w > limits.maxWidth || h > limits.maxHeight) bad('size', `${w}x${h} exceeds this server's maximum of ${limits.maxWidth}x${limits.maxHeight}`);
  return { width: w, height: h };
}

function parseRotation(raw: string): void {
  const mirrored = raw.startsWith('!');
  const n = mirrored ? raw.slice(1) : raw;
  if (!NUM.test(n) || Number(n) > 360) bad('rotation', `${quote(raw)} is not a number of degrees in 0..360, optionally after "!"`);
  if (mirrored) unsupported('rotation', 'mirroring is not supported');
  if (Number(n) % 360 !== 0) unsupported('rotation', 'only 0 is supported');
}

function parseQualityFormat(raw: string): { quality: IiifQuality; format: ImageFormat } {
  const dot = raw.lastIndexOf('.');
  if (dot <= 0) bad('quality', `${quote(raw)} is not {quality}.{format}, e.g. default.jpg`);
  const quality = raw.slice(0, dot);
  const ext = raw.slice(dot + 1);
  if (quality === 'bitonal') unsupported('quality', 'bitonal is not supported; use default, color or gray');
  if (quality !== 'default' && quality !== 'color' && quality !== 'gray') bad('quality', `${quote(quality)} is not default, color or gray`);
  const format = FORMATS[ext];
  if (!format) {
    if (OTHER_FORMATS.has(ext)) unsupported('format', `${ext} is not supported; use jpg, png or webp`);
    bad('format', `${quote(ext)} is not jpg, png or webp`);
  }
  return { quality, format };
}

/** `{region}/{size}/{rotation}/{quality}.{format}` → the full-resolution rectangle and output size. */
export function parseIiifImageRequest(
  parts: { region: string; size: string; rotation: string; qualityFormat: string },
  image: { width: number; height: number },
  limits: IiifLimits,
): IiifImageRequest {
  for (const [name, value] of Object.entries(parts)) if (value.length > 100) bad(name, 'longer than 100 characters');
  const region = parseRegion(parts.region, image);
  const size = parseSize(parts.size, region, limits);
  parseRotation(parts.rotation);
  const qf = parseQualityFormat(parts.qualityFormat);
  return { region, ...size, ...qf };
}

/** `gray`: every channel painted white (or the gray LUT), summed: the picture's brightness. */
export function graySpec(spec: RenderSpecInput): RenderSpecInput {
  return { ...spec, channels: spec.channels.map(({ color: _color, lut: _lut, ...c }) => ({ ...c, color: '#ffffff' })) };
}

/** info.json for one identifier; `id` is the absolute base URI clients build tile URLs from. */
export function iiifInfo(manifest: Pick<DatasetManifest, 'width' | 'height' | 'tileSize' | 'levels'>, id: string, limits: IiifLimits): Record<string, unknown> {
  const scaleFactors = Array.from({ length: manifest.levels }, (_, k) => 2 ** k);
  return {
    '@context': 'http://iiif.io/api/image/3/context.json',
    id,
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level1',
    width: manifest.width,
    height: manifest.height,
    maxWidth: limits.maxWidth,
    maxHeight: limits.maxHeight,
    // Coarsest first, as the spec's examples list them.
    sizes: scaleFactors
      .map((f) => levelSize(manifest, Math.log2(f)))
      .filter((s) => s.width <= limits.maxWidth && s.height <= limits.maxHeight)
      .reverse(),
    tiles: [{ width: manifest.tileSize, height: manifest.tileSize, scaleFactors }],
    extraQualities: ['color', 'gray'],
    extraFormats: ['png', 'webp'],
    extraFeatures: ['regionByPct', 'regionSquare', 'sizeByPct', 'sizeByConfinedWh', 'cors', 'jsonldMediaType'],
  };
}
