import { SPEC_LIMITS, TilefarmError, type DatasetManifest, type ImageFormat, type RenderSpecInput } from '@tilefarm/contracts';
import { defaultRenderSpec, type PixelRect } from './region-placement';

/**
 * CATMAID's tile source conventions (tile-source.js of catmaid/CATMAID at commit 027c17a6, the
 * templates of types 1, 4, 5 and 9; `getTileBaseName` writes `t/z/` for 4-D stacks), parsed from
 * the part of the path after a mirror's base URL. Pure: no I/O; errors name the part.
 *
 *   type 1, 9   [{t}/]{z}/{row}_{col}_{zoom}.{ext}      overview {z}/small.{ext}
 *   type 4      [{t}/]{z}/{zoom}/{row}_{col}.{ext}      overview {z}/small.{ext}
 *   type 5      {zoom}/[{t}/]{z}/{row}/{col}.{ext}      overview small/{z}.{ext}
 * zoom 0 = full resolution, +1 per 2x downsample; row/col count tiles of the mirror's tile size
 * (the dataset's). Type 9's query: color, min, max, gamma (one comma-separated value per channel),
 * quality.
 */
export type CatmaidRequest =
  | { kind: 'tile'; z: number; t: number; row: number; col: number; zoom: number; format: ImageFormat }
  | { kind: 'overview'; z: number; t: number; format: ImageFormat };

const INT = /^(0|[1-9]\d{0,6})$/;
const EXTENSIONS: Record<string, ImageFormat> = { jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp' };

function invalid(why: string): never {
  throw new TilefarmError('invalid_tile', why);
}

function int(raw: string, what: string): number {
  if (!INT.test(raw)) invalid(`${what}: "${raw.slice(0, 20)}" is not a non-negative integer`);
  return Number(raw);
}

function splitExt(last: string): { stem: string; format: ImageFormat } {
  const dot = last.lastIndexOf('.');
  if (dot < 0) invalid(`"${last.slice(0, 40)}" has no file extension (.jpg, .png or .webp)`);
  const ext = last.slice(dot + 1).toLowerCase();
  const format = EXTENSIONS[ext];
  if (!format) throw new TilefarmError('unknown_format', `file extension "${ext.slice(0, 10)}" is not jpg, png or webp`);
  return { stem: last.slice(0, dot), format };
}

export function parseCatmaidPath(rest: string): CatmaidRequest {
  const segs = rest.split('/');
  if (segs.length > 6 || rest.length > 200) invalid('not a CATMAID tile path (types 1, 4, 5, 9)');
  const { stem, format } = splitExt(segs[segs.length - 1]!);
  const dirs = segs.slice(0, -1);
  if (segs[0] === 'small' && segs.length === 2) return { kind: 'overview', z: int(stem, 'z'), t: 0, format };
  if (stem === 'small') {
    if (dirs.length !== 1 && dirs.length !== 2) invalid('overview: expected {z}/small.{ext}');
    return { kind: 'overview', z: int(dirs[dirs.length - 1]!, 'z'), t: dirs.length === 2 ? int(dirs[0]!, 't') : 0, format };
  }
  const parts = stem.split('_');
  if (parts.length === 3 && (dirs.length === 1 || dirs.length === 2)) {
    const [row, col, zoom] = parts.map((p, i) => int(p, ['row', 'col', 'zoom'][i]!)) as [number, number, number];
    return { kind: 'tile', z: int(dirs[dirs.length - 1]!, 'z'), t: dirs.length === 2 ? int(dirs[0]!, 't') : 0, row, col, zoom, format };
  }
  if (parts.length === 2 && (dirs.length === 2 || dirs.length === 3)) {
    const [row, col] = parts.map((p, i) => int(p, ['row', 'col'][i]!)) as [number, number];
    const zoom = int(dirs[dirs.length - 1]!, 'zoom');
    return { kind: 'tile', z: int(dirs[dirs.length - 2]!, 'z'), t: dirs.length === 3 ? int(dirs[0]!, 't') : 0, row, col, zoom, format };
  }
  if (parts.length === 1 && (dirs.length === 3 || dirs.length === 4)) {
    const zoom = int(dirs[0]!, 'zoom');
    const t = dirs.length === 4 ? int(dirs[1]!, 't') : 0;
    return { kind: 'tile', z: int(dirs[dirs.length - 2]!, 'z'), t, row: int(dirs[dirs.length - 1]!, 'row'), col: int(stem, 'col'), zoom, format };
  }
  invalid(`"${rest.slice(0, 60)}" is not a CATMAID tile path of type 1, 4, 5 or 9`);
}

/** Full-resolution rectangle, cropped output and padded size of a CATMAID tile (CATMAID wants full tiles). */
export function catmaidTileArea(m: Pick<DatasetManifest, 'width' | 'height' | 'tileSize'>, row: number, col: number, zoom: number): { rect: PixelRect; out: { width: number; height: number }; pad: { width: number; height: number } } {
  if (zoom > 30) invalid(`zoom: ${zoom} is larger than 30`);
  const f = 2 ** zoom;
  const ts = m.tileSize;
  const x = col * ts * f;
  const y = row * ts * f;
  if (x >= m.width || y >= m.height) {
    throw new TilefarmError('out_of_range', `tile row ${row}, col ${col} is outside zoom level ${zoom} (${Math.ceil(m.width / f / ts)} cols x ${Math.ceil(m.height / f / ts)} rows)`);
  }
  const rect = { x, y, width: Math.min(ts * f, m.width - x), height: Math.min(ts * f, m.height - y) };
  return { rect, out: { width: Math.ceil(rect.width / f), height: Math.ceil(rect.height / f) }, pad: { width: ts, height: ts } };
}

/** The overview: the whole plane at the first 2x step that fits in one tile. */
export function catmaidOverviewArea(m: Pick<DatasetManifest, 'width' | 'height' | 'tileSize'>): { rect: PixelRect; out: { width: number; height: number } } {
  let f = 1;
  while (Math.ceil(m.width / f) > m.tileSize || Math.ceil(m.height / f) > m.tileSize) f *= 2;
  return { rect: { x: 0, y: 0, width: m.width, height: m.height }, out: { width: Math.ceil(m.width / f), height: Math.ceil(m.height / f) } };
}

const COLOUR_NAMES: Record<string, string> = {
  red: '#ff0000',
  green: '#00ff00',
  blue: '#0000ff',
  cyan: '#00ffff',
  magenta: '#ff00ff',
  yellow: '#ffff00',
  white: '#ffffff',
  gray: '#ffffff',
  grey: '#ffffff',
};
const NUM = /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

function list(query: Record<string, unknown>, name: string, channels: number): string[] | undefined {
  const v = query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 4096) throw new TilefarmError('invalid_spec', `${name}: give it once, as a comma-separated list`);
  const items = v.split(',').map((s) => s.trim());
  if (items.length > channels) throw new TilefarmError('invalid_spec', `${name}: ${items.length} values but the rendering has ${channels} channel${channels === 1 ? '' : 's'}`);
  return items;
}

function numberAt(name: string, k: number, raw: string): number | undefined {
  if (raw === '') return undefined;
  if (!NUM.test(raw) || !Number.isFinite(Number(raw))) throw new TilefarmError('invalid_spec', `${name}: value ${k + 1} "${raw.slice(0, 20)}" is not a number`);
  return Number(raw);
}

/**
 * Type 9's per-channel settings over the dataset's default rendering: `color` (red, green, blue,
 * cyan, magenta, yellow, white or RRGGBB / #RRGGBB), `min`, `max`, `gamma`, one value per channel
 * in order (shorter lists leave the rest at the dataset's defaults; an empty item keeps that one),
 * `quality` 1..100. Without any of them: the dataset's default rendering.
 */
export function catmaidQueryToSpec(query: Record<string, unknown>, manifest: Pick<DatasetManifest, 'channels'>): RenderSpecInput {
  const spec = defaultRenderSpec(manifest, SPEC_LIMITS.maxChannels);
  const n = spec.channels.length;
  const channels = spec.channels.map((c) => ({ ...c }));
  const colors = list(query, 'color', n);
  const mins = list(query, 'min', n);
  const maxs = list(query, 'max', n);
  const gammas = list(query, 'gamma', n);
  colors?.forEach((raw, k) => {
    if (raw === '') return;
    const named = COLOUR_NAMES[raw.toLowerCase()];
    const hex = /^#?([0-9a-fA-F]{6})$/.exec(raw)?.[1];
    if (!named && !hex) throw new TilefarmError('invalid_spec', `color: value ${k + 1} "${raw.slice(0, 20)}" is not red, green, blue, cyan, magenta, yellow, white or RRGGBB`);
    channels[k]!.color = named ?? `#${hex!.toLowerCase()}`;
  });
  for (let k = 0; k < n; k++) {
    const ch = channels[k]!;
    const window = (ch.window as [number, number] | undefined) ?? [0, 0];
    const lo = mins && mins[k] !== undefined ? numberAt('min', k, mins[k]!) : undefined;
    const hi = maxs && maxs[k] !== undefined ? numberAt('max', k, maxs[k]!) : undefined;
    const next: [number, number] = [lo ?? window[0], hi ?? window[1]];
    if (next[0] > next[1]) throw new TilefarmError('invalid_spec', `min/max: channel ${k + 1}'s min ${next[0]} exceeds its max ${next[1]}`);
    ch.window = next;
    const g = gammas && gammas[k] !== undefined ? numberAt('gamma', k, gammas[k]!) : undefined;
    if (g !== undefined) {
      if (g <= 0 || g > 10) throw new TilefarmError('invalid_spec', `gamma: value ${k + 1} must be in (0, 10]`);
      ch.gamma = g;
    }
  }
  const q = query.quality;
  if (q !== undefined && q !== '') {
    if (typeof q !== 'string' || !/^\d{1,3}$/.test(q) || Number(q) < 1 || Number(q) > 100) throw new TilefarmError('invalid_spec', 'quality: must be an integer 1..100');
    spec.quality = Number(q);
  }
  return { ...spec, channels };
}
