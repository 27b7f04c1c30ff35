import {
  IMAGE_FORMATS,
  SPEC_LIMITS,
  TilefarmError,
  levelGrid,
  type ChannelSpec,
  type DatasetManifest,
  type ImageFormat,
  type LutName,
  type RenderSpecInput,
} from '@tilefarm/contracts';

/**
 * OMERO.web's webgateway rendering parameters, mapped to a render spec, so a viewer written for
 * `render_image_region` needs only a base-URL change. Pure: no I/O, every error a TilefarmError
 * that names the parameter. See apps/api/src/routes/omero.ts for the routes and what differs.
 *
 *   c=1|100:505$0000FF,-2|463:2409$00FF00   1-based channel, "-" inactive, |start:end window, $RRGGBB or $name.lut
 *   m=c|g       greyscale shows only the first active channel, with the gray LUT
 *   p=intmax|intmean|intsum[|start:end]     Z projection (0-based, inclusive); "normal" = none
 *   maps=[{"reverse":{"enabled":true}},...] invert; entry k belongs to the k-th entry of c (OMERO zips them)
 *   q=0..1      quality × 100
 *   format=jpeg|png (webp is ours too; tif is not supported)
 */
export type OmeroQuery = Record<string, unknown>;

const NUM = '-?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?';
const CHANNEL_ENTRY = new RegExp(`^(-)?(\\d{1,4})(?:\\|(${NUM}):(${NUM}))?(?:\\$(.*))?$`);
const HEX = /^[0-9a-fA-F]{6}$/;
const INT = /^(0|[1-9]\d{0,6})$/;
const MAX_PARAM_LENGTH = 8192;

/** OMERO's LUT file names (ImageJ/Fiji's set) that match one of our LUTs. */
const LUT_ALIASES: Record<string, LutName> = {
  'gray.lut': 'gray',
  'grays.lut': 'gray',
  'grey.lut': 'gray',
  'greys.lut': 'gray',
  'fire.lut': 'fire',
  'ice.lut': 'ice',
  'viridis.lut': 'viridis',
  'mpl-viridis.lut': 'viridis',
  'magma.lut': 'magma',
  'mpl-magma.lut': 'magma',
  'inferno.lut': 'inferno',
  'mpl-inferno.lut': 'inferno',
  'cividis.lut': 'cividis',
  'mpl-cividis.lut': 'cividis',
};

const PROJECTIONS = { intmax: 'max', intmean: 'mean', intsum: 'sum' } as const;

function bad(param: string, why: string): never {
  throw new TilefarmError('invalid_spec', `${param}: ${why}`);
}

/** A query value as one string: repeated parameters and bracket objects are refused, not guessed at. */
function text(query: OmeroQuery, param: string): string | undefined {
  const v = query[param];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') bad(param, 'give the parameter once, as plain text');
  if (v.length > MAX_PARAM_LENGTH) bad(param, `longer than ${MAX_PARAM_LENGTH} characters`);
  return v;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

interface ChannelEntry {
  index: number; // 0-based dataset channel
  active: boolean;
  window?: [number, number];
  color?: string;
  lut?: LutName;
}

function parseChannels(c: string, manifest: DatasetManifest): ChannelEntry[] {
  const n = manifest.channels.length;
  const parts = c.split(',');
  if (parts.length > SPEC_LIMITS.maxChannels) bad('c', `${parts.length} entries; at most ${SPEC_LIMITS.maxChannels} (POST a spec to /v1/specs for more)`);
  return parts.map((raw, k) => {
    const entry = `entry ${k + 1} ${quote(raw)}`;
    const m = CHANNEL_ENTRY.exec(raw.trim());
    if (!m) bad('c', `${entry} is not [-]index[|start:end][$RRGGBB or $name.lut]`);
    const [, minus, idx, lo, hi, paint] = m;
    const oneBased = Number(idx);
    if (oneBased < 1 || oneBased > n) bad('c', `${entry}: channel ${oneBased} but the dataset has ${n} channel${n === 1 ? '' : 's'} (1..${n})`);
    const out: ChannelEntry = { index: oneBased - 1, active: minus === undefined };
    if (lo !== undefined && hi !== undefined) {
      const window: [number, number] = [Number(lo), Number(hi)];
      if (!window.every(Number.isFinite)) bad('c', `${entry}: window is not finite`);
      if (window[0] > window[1]) bad('c', `${entry}: window start ${window[0]} exceeds end ${window[1]}`);
      out.window = window;
    }
    if (paint !== undefined) {
      if (HEX.test(paint)) out.color = `#${paint.toLowerCase()}`;
      else if (paint.toLowerCase().endsWith('.lut')) {
        const lut = LUT_ALIASES[paint.toLowerCase()];
        if (!lut) bad('c', `${entry}: LUT ${quote(paint)} is not available; use one of ${Object.keys(LUT_ALIASES).join(', ')}, or $RRGGBB`);
        out.lut = lut;
      } else bad('c', `${entry}: colour ${quote(paint)} is not RRGGBB (hex) or name.lut`);
    }
    return out;
  });
}

/** `maps`: one entry per `c` entry; `reverse` (or the older `inverted`) with `enabled: true` inverts. */
function parseInverts(maps: string, count: number): boolean[] {
  let value: unknown;
  try {
    value = JSON.parse(maps);
  } catch {
    bad('maps', 'is not valid JSON (expected [{"reverse":{"enabled":true}}, ...])');
  }
  if (!Array.isArray(value)) bad('maps', 'must be a JSON array with one entry per channel');
  const out: boolean[] = [];
  for (let k = 0; k < Math.min(count, value.length); k++) {
    const entry: unknown = value[k];
    if (entry === null || entry === undefined) {
      out.push(false);
      continue;
    }
    if (typeof entry !== 'object' || Array.isArray(entry)) bad('maps', `entry ${k + 1} must be an object or null`);
    let invert = false;
    for (const key of ['reverse', 'inverted'] as const) {
      const setting: unknown = (entry as Record<string, unknown>)[key];
      if (setting === undefined || setting === null) continue;
      const enabled: unknown = (setting as Record<string, unknown>).enabled;
      if (typeof setting !== 'object' || typeof enabled !== 'boolean') bad('maps', `entry ${k + 1}: "${key}" must be {"enabled": true|false}`);
      invert ||= enabled;
    }
    out.push(invert);
  }
  return out;
}

function parseProjection(p: string, manifest: DatasetManifest): RenderSpecInput['projection'] {
  const [algorithm = '', range, ...rest] = p.split('|');
  if (algorithm === 'normal' && range === undefined) return undefined;
  const type = PROJECTIONS[algorithm as keyof typeof PROJECTIONS];
  if (!type || rest.length > 0) bad('p', `${quote(p)} is not intmax, intmean or intsum, optionally followed by |start:end`);
  let from = 0;
  let to = manifest.sizeZ - 1;
  if (range !== undefined) {
    const [a = '', b = '', ...more] = range.split(':');
    if (!INT.test(a) || !INT.test(b) || more.length > 0) bad('p', `range ${quote(range)} is not start:end (0-based slice numbers)`);
    from = Number(a);
    to = Number(b);
    if (from > to) bad('p', `range start ${from} exceeds end ${to}`);
    if (from >= manifest.sizeZ) bad('p', `range starts at slice ${from} but the dataset has ${manifest.sizeZ} slice${manifest.sizeZ === 1 ? '' : 's'} (0..${manifest.sizeZ - 1})`);
    to = Math.min(to, manifest.sizeZ - 1);
  }
  if (to - from >= SPEC_LIMITS.maxProjectionDepth) bad('p', `projects ${to - from + 1} slices; at most ${SPEC_LIMITS.maxProjectionDepth}`);
  return { type, z: [from, to] };
}

/** `format` (or the default jpeg); tif is OMERO's but not ours. */
export function omeroFormat(query: OmeroQuery): ImageFormat {
  const raw = text(query, 'format');
  if (raw === undefined || raw === '') return 'jpeg';
  const f = raw.toLowerCase() === 'jpg' ? 'jpeg' : raw.toLowerCase();
  if (f === 'tif' || f === 'tiff') throw new TilefarmError('unknown_format', 'format: tif is not supported here; use jpeg or png');
  if (!(IMAGE_FORMATS as readonly string[]).includes(f)) throw new TilefarmError('unknown_format', `format: ${quote(raw)} is not one of jpeg, png, webp`);
  return f as ImageFormat;
}

/** `q` in 0..1 → quality 1..100 (OMERO's q=0 is the lowest quality, our 1). */
function parseQuality(q: string): number {
  const n = Number(q);
  if (q.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) bad('q', `${quote(q)} is not a number in 0..1`);
  return Math.max(1, Math.round(n * 100));
}

/** Maps OMERO rendering parameters to a render spec (unvalidated input form; the SpecRegistry validates it). */
export function omeroQueryToSpec(query: OmeroQuery, manifest: DatasetManifest): RenderSpecInput {
  const c = text(query, 'c');
  const m = text(query, 'm');
  const p = text(query, 'p');
  const maps = text(query, 'maps');
  const q = text(query, 'q');
  const flip = text(query, 'flip');
  if (flip !== undefined && flip !== '') bad('flip', 'flipping is not supported');

  // Without c, OMERO uses the image's saved settings; ours are the manifest's channels with their default active flags.
  let entries: ChannelEntry[];
  if (c !== undefined && c !== '') entries = parseChannels(c, manifest);
  else {
    if (manifest.channels.length > SPEC_LIMITS.maxChannels) bad('c', `required: the dataset has ${manifest.channels.length} channels, more than ${SPEC_LIMITS.maxChannels} can be shown at once`);
    entries = manifest.channels.map((ch, index) => ({ index, active: ch.active !== false }));
  }
  const inverts = maps !== undefined && maps !== '' ? parseInverts(maps, entries.length) : [];

  let mode: 'c' | 'g' = 'c';
  if (m !== undefined && m !== '') {
    if (m !== 'c' && m !== 'g') bad('m', `${quote(m)} is not c (colour) or g (greyscale)`);
    mode = m;
  }

  const channels: ChannelSpec[] = [];
  entries.forEach((e, k) => {
    if (!e.active) return;
    if (mode === 'g' && channels.length > 0) return;
    const spec: ChannelSpec = { index: e.index, gamma: 1, invert: inverts[k] ?? false, active: true };
    if (e.window) spec.window = e.window;
    if (mode === 'g') spec.lut = 'gray';
    else if (e.lut) spec.lut = e.lut;
    else if (e.color) spec.color = e.color;
    channels.push(spec);
  });
  // Nothing active renders black (as OMERO does); a spec still needs one (inactive) channel.
  if (channels.length === 0) channels.push({ index: entries[0]?.index ?? 0, gamma: 1, invert: false, active: false });

  const format = omeroFormat(query);
  const spec: RenderSpecInput = { v: 1, channels, composite: 'add', format };
  const projection = p !== undefined && p !== '' ? parseProjection(p, manifest) : undefined;
  if (projection) spec.projection = projection;
  if (q !== undefined && q !== '') spec.quality = parseQuality(q);
  return spec;
}

/**
 * `tile=level,x,y[,w,h]`. OMERO's RenderingEngine numbers resolution levels with 0 = lowest, but
 * webgateway turns the URL's level v into `levels - v` (omeroweb/webgateway/views.py), so in the
 * URL level 0 is full resolution, as ours is: the level maps through unchanged. x and y are tile
 * column and row (webgateway multiplies them by w and h). w,h must be the dataset's tile size:
 * we serve one tile grid, not arbitrary regions.
 */
export function parseOmeroTile(query: OmeroQuery, manifest: DatasetManifest): { level: number; x: number; y: number } {
  const raw = query.tile;
  if (raw === undefined) throw new TilefarmError('invalid_tile', 'tile: required, as tile=level,x,y,w,h');
  if (typeof raw !== 'string' || raw.length > 100) throw new TilefarmError('invalid_tile', 'tile: give it once, as tile=level,x,y,w,h');
  const parts = raw.split(',');
  if ((parts.length !== 3 && parts.length !== 5) || !parts.every((s) => INT.test(s))) {
    throw new TilefarmError('invalid_tile', `tile: ${quote(raw)} is not level,x,y,w,h (non-negative integers)`);
  }
  const [level, x, y, w, h] = parts.map(Number) as [number, number, number, number?, number?];
  if (w !== undefined && h !== undefined && (w !== manifest.tileSize || h !== manifest.tileSize)) {
    throw new TilefarmError('invalid_tile', `tile: size ${w}x${h} but this dataset's tiles are ${manifest.tileSize}x${manifest.tileSize}`);
  }
  return { level, x, y };
}

/** render_image's whole plane: the finest level whose image fits in one tile, if the pyramid has one. */
export function singleTileLevel(manifest: DatasetManifest): number {
  for (let level = 0; level < manifest.levels; level++) {
    const { cols, rows } = levelGrid(manifest, level);
    if (cols === 1 && rows === 1) return level;
  }
  throw new TilefarmError('invalid_tile', `render_image: no level of this dataset fits in one ${manifest.tileSize}px tile (coarsest is level ${manifest.levels - 1}); use render_image_region`);
}

/**
 * `region=x,y,w,h` (render_image_region without `tile`): a full-resolution rectangle, returned at
 * its own size (OMERO.figure's crops). Rendered by the workers as a region render, bounded by the
 * server's maximum output side; a rectangle reaching past the image is cropped to it.
 */
export function parseOmeroRegion(query: OmeroQuery, manifest: Pick<DatasetManifest, 'width' | 'height'>): { x: number; y: number; width: number; height: number } {
  const raw = query.region;
  if (typeof raw !== 'string' || raw.length > 100) throw new TilefarmError('invalid_tile', 'region: give it once, as region=x,y,w,h');
  const parts = raw.split(',');
  if (parts.length !== 4 || !parts.every((s) => INT.test(s))) throw new TilefarmError('invalid_tile', `region: ${quote(raw)} is not x,y,w,h (non-negative integers)`);
  const [x, y, w, h] = parts.map(Number) as [number, number, number, number];
  if (w === 0 || h === 0) throw new TilefarmError('invalid_tile', `region: ${quote(raw)} is empty`);
  if (x >= manifest.width || y >= manifest.height) throw new TilefarmError('out_of_range', `region: ${quote(raw)} starts outside the ${manifest.width}x${manifest.height} image`);
  return { x, y, width: Math.min(w, manifest.width - x), height: Math.min(h, manifest.height - y) };
}

/** render_thumbnail / render_birds_eye_view: the whole plane with its longer side `size` (OMERO's default 96), never upscaled. */
export function omeroThumbnailSize(raw: string | undefined, manifest: Pick<DatasetManifest, 'width' | 'height'>, maxSide: number): { width: number; height: number } {
  let size = 96;
  if (raw !== undefined && raw !== '') {
    if (!INT.test(raw) || Number(raw) < 1) throw new TilefarmError('invalid_tile', `size: ${quote(raw)} is not a positive integer`);
    size = Number(raw);
  }
  if (size > maxSide) throw new TilefarmError('invalid_tile', `size: ${size} is larger than this server's maximum of ${maxSide}`);
  const scale = Math.min(1, size / Math.max(manifest.width, manifest.height));
  return { width: Math.max(1, Math.round(manifest.width * scale)), height: Math.max(1, Math.round(manifest.height * scale)) };
}

const PIXEL_TYPES = { uint8: 'uint8', uint16: 'uint16', float32: 'float' } as const;

/**
 * imgData/{id}: what OMERO.iviewer reads to open an image (the fields of webgateway's
 * imageData_json that it uses). `range` is each channel's full range (min/max of the stored
 * statistics over every plane, else the pixel type's range).
 */
export function omeroImageData(manifest: DatasetManifest, range: Array<[number, number]>, base: string): Record<string, unknown> {
  const levels = manifest.levels;
  const zoomLevelScaling: Record<string, number> = {};
  for (let k = 0; k < levels; k++) zoomLevelScaling[String(k)] = 1 / 2 ** k;
  const p = manifest.physicalSize;
  return {
    id: manifest.id,
    meta: { imageName: manifest.name ?? manifest.id, imageId: manifest.id, pixelsType: PIXEL_TYPES[manifest.dtype], datasetName: manifest.id, projectName: '', imageDescription: '' },
    perms: { canAnnotate: false, canEdit: false, canDelete: false, canLink: false },
    tiles: true,
    tile_size: { width: manifest.tileSize, height: manifest.tileSize },
    levels,
    zoomLevelScaling,
    interpolate: true,
    size: { width: manifest.width, height: manifest.height, z: manifest.sizeZ, t: manifest.sizeT, c: manifest.channels.length },
    pixel_size: { x: p?.x ?? null, y: p?.y ?? null, z: p?.z ?? null, unit_x: p?.unit ?? null },
    init_zoom: 0,
    pixel_range: range.length > 0 ? [Math.min(...range.map((r) => r[0])), Math.max(...range.map((r) => r[1]))] : [0, 255],
    channels: manifest.channels.map((c, i) => ({
      active: c.active !== false,
      label: c.label,
      color: c.color.slice(1).toUpperCase(),
      window: { min: range[i]?.[0] ?? 0, max: range[i]?.[1] ?? 0, start: c.window[0], end: c.window[1] },
      family: 'linear',
      coefficient: 1,
      inverted: false,
      reverseIntensity: false,
    })),
    rdefs: { model: 'color', projection: 'normal', defaultZ: Math.floor(manifest.sizeZ / 2), defaultT: 0, invertAxis: false },
    split_channel: { g: { width: manifest.width, height: manifest.height, border: 0, gridx: 1, gridy: 1 }, c: { width: manifest.width, height: manifest.height, border: 0, gridx: 1, gridy: 1 } },
    // Not OMERO's: where the same image is served by the other protocols here.
    tilefarm: { iiif: `${base}/iiif/3/${manifest.id}/info.json`, dzi: `${base}/dzi/${manifest.id}.dzi` },
  };
}

/** histogram_json's `bins`: stored bins summed into fewer when it divides them evenly, else as stored. */
export function rebinHistogram(counts: number[], bins: string | undefined): number[] {
  if (bins === undefined || bins === '') return counts;
  if (!INT.test(bins) || Number(bins) < 1) throw new TilefarmError('bad_request', `bins: ${quote(bins)} is not a positive integer`);
  const n = Number(bins);
  if (n >= counts.length || counts.length % n !== 0) return counts;
  const k = counts.length / n;
  return Array.from({ length: n }, (_, i) => counts.slice(i * k, (i + 1) * k).reduce((a, b) => a + b, 0));
}
