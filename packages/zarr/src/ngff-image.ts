import { z } from 'zod';
import { TilefarmError, type ChannelInfo, type DType } from '@tilefarm/contracts';

/**
 * OME-NGFF 0.4 / 0.5 image metadata → what tilefarm needs, checked. Pure (no I/O), so every rule
 * here has a unit test. Refusals are `source_unreadable` (422) with a message naming the problem.
 */

const Axis = z.object({ name: z.string(), type: z.string().optional(), unit: z.string().optional() });
const Transform = z.object({ type: z.string(), scale: z.array(z.number()).optional(), translation: z.array(z.number()).optional() });
const Multiscale = z.object({
  version: z.string().optional(),
  axes: z.array(z.union([Axis, z.string()])).min(2).max(5),
  datasets: z.array(z.object({ path: z.string().min(1).max(200), coordinateTransformations: z.array(Transform).optional() })).min(1).max(30),
  coordinateTransformations: z.array(Transform).optional(),
});
const OmeroChannel = z.object({
  label: z.string().optional(),
  color: z.string().optional(),
  active: z.boolean().optional(),
  window: z.object({ start: z.number(), end: z.number(), min: z.number().optional(), max: z.number().optional() }).partial().optional(),
});
const Omero = z.object({ channels: z.array(OmeroChannel).optional() });

/** The image attributes: NGFF 0.4 keeps them at the top of .zattrs, 0.5 under "ome". */
export const NgffAttributes = z.object({ multiscales: z.array(Multiscale).min(1), omero: Omero.optional() });

export const AXIS_ORDER = ['t', 'c', 'z', 'y', 'x'] as const;
export type AxisName = (typeof AXIS_ORDER)[number];

/**
 * Source dtypes a linked Zarr may have, and the sample type tilefarm holds them in. int16 and
 * uint32 are held as float32 (render windows stay in raw units): every int16 value is exact in
 * float32, uint32 values are exact below 2^24 (16,777,216) and within 1 part in 2^24 above, far
 * below one step of an 8-bit picture. The dataset keeps the Zarr's own type in `source.dtype`.
 */
export const LINKABLE_DTYPES: Record<string, DType> = {
  uint8: 'uint8',
  uint16: 'uint16',
  float32: 'float32',
  int16: 'float32',
  uint32: 'float32',
  '|u1': 'uint8',
  '<u2': 'uint16',
  '<f4': 'float32',
  '<i2': 'float32',
  '<u4': 'float32',
};

/** Bytes per sample of each linkable source type (both spellings). */
const SOURCE_SAMPLE_BYTES: Record<string, number> = { uint8: 1, '|u1': 1, uint16: 2, '<u2': 2, int16: 2, '<i2': 2, uint32: 4, '<u4': 4, float32: 4, '<f4': 4 };

/**
 * The most bytes one decoded chunk may hold. A worker decodes whole chunks (several at once), so a
 * Zarr declaring plane-sized chunks of a huge image would take a worker's memory with one tile
 * read; refused at registration, and a chunk whose Blosc header declares more is refused at read.
 * 128 MiB: a 8192² uint16 plane (usual chunkings are 0.5-8 MiB: 64³, 1024², 2048²).
 */
export const MAX_CHUNK_BYTES = 128 * 2 ** 20;

/** Decoded bytes of one chunk of `shape` and source type `dtype` (undefined: not a linkable type). */
export function chunkBytes(shape: readonly number[], dtype: string): number | undefined {
  const sample = SOURCE_SAMPLE_BYTES[dtype];
  return sample === undefined ? undefined : shape.reduce((n, d) => n * d, sample);
}

export interface NgffLevelArray {
  path: string;
  shape: number[];
  chunks: number[];
  dtype: string;
  fillValue: number | null;
}

export interface NgffImage {
  ngffVersion: string;
  /** Axis names in array order, a subsequence of t, c, z, y, x. */
  axes: AxisName[];
  levels: NgffLevelArray[];
  /** The sample type tilefarm holds it in (LINKABLE_DTYPES). */
  dtype: DType;
  /** The Zarr's own data type (as the Zarr library names it). */
  sourceDtype: string;
  width: number;
  height: number;
  sizeC: number;
  sizeZ: number;
  sizeT: number;
  fillValue: number;
  physicalSize?: { x: number; y: number; z?: number; unit: string };
  channels: ChannelInfo[];
}

const DEFAULT_COLOURS = ['#0000ff', '#00ff00', '#ff0000', '#ff00ff', '#00ffff', '#ffff00', '#ffffff'];
const UNITS: Record<string, string> = { micrometer: 'µm', nanometer: 'nm', millimeter: 'mm', angstrom: 'Å', meter: 'm' };

function bad(message: string): TilefarmError {
  return new TilefarmError('source_unreadable', message);
}

/** The NGFF attributes of a group's attributes (0.5 under "ome", 0.4 at the top), checked for shape. */
export function ngffAttributesOf(attrs: Record<string, unknown>, where: string): z.infer<typeof NgffAttributes> {
  const candidate = typeof attrs.ome === 'object' && attrs.ome !== null ? attrs.ome : attrs;
  if (!('multiscales' in (candidate as object))) throw bad(`${where} is a Zarr group but not an OME-NGFF image (no "multiscales" in its attributes)`);
  const parsed = NgffAttributes.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw bad(`${where}: NGFF metadata invalid at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

function scaleOf(transforms: z.infer<typeof Transform>[] | undefined): number[] | undefined {
  return transforms?.find((t) => t.type === 'scale')?.scale;
}

/**
 * Checks multiscales[0] against the arrays it names and builds the image. `arrays[i]` is the
 * opened array of `datasets[i].path`. `maxPixels` bounds the declared size (width × height × planes).
 */
export function describeNgffImage(attrs: z.infer<typeof NgffAttributes>, arrays: NgffLevelArray[], where: string, maxPixels: number): NgffImage {
  const ms = attrs.multiscales[0]!;
  const axes = ms.axes.map((a) => (typeof a === 'string' ? a : a.name).toLowerCase());
  let last = -1;
  for (const name of axes) {
    const at = AXIS_ORDER.indexOf(name as AxisName);
    if (at < 0) throw bad(`${where}: axis "${name.slice(0, 20)}" is not one of t, c, z, y, x`);
    if (at <= last) throw bad(`${where}: axes ${JSON.stringify(axes)} are not in the order t, c, z, y, x`);
    last = at;
  }
  if (axes[axes.length - 2] !== 'y' || axes[axes.length - 1] !== 'x') throw bad(`${where}: the last two axes must be y and x, not ${JSON.stringify(axes.slice(-2))}`);
  const named = axes as AxisName[];
  const level0 = arrays[0]!;
  for (const [i, a] of arrays.entries()) {
    if (a.shape.length !== named.length) throw bad(`${where}: level ${i} ("${a.path}") has ${a.shape.length} dimensions but ${named.length} axes are declared`);
  }
  const dtype = LINKABLE_DTYPES[level0.dtype];
  if (!dtype) throw bad(`${where}: data type ${level0.dtype} is not supported (supported: uint8, uint16, int16, uint32, float32)`);
  const dim = (shape: number[], axis: AxisName) => (named.includes(axis) ? shape[named.indexOf(axis)]! : 1);
  const width = dim(level0.shape, 'x');
  const height = dim(level0.shape, 'y');
  const sizeC = dim(level0.shape, 'c');
  const sizeZ = dim(level0.shape, 'z');
  const sizeT = dim(level0.shape, 't');
  if ([width, height, sizeC, sizeZ, sizeT].some((n) => !Number.isSafeInteger(n) || n < 1)) throw bad(`${where}: level 0 shape ${JSON.stringify(level0.shape)} has an empty dimension`);
  if (sizeC > 1024) throw bad(`${where}: ${sizeC} channels; at most 1024 are supported`);
  if (width * height * sizeZ * sizeT > maxPixels) throw bad(`${where}: declared size ${width} × ${height} × ${sizeZ} z × ${sizeT} t is over this server's limit of ${maxPixels} pixels per channel`);
  for (const [k, a] of arrays.entries()) {
    const bytes = chunkBytes(a.chunks, level0.dtype) ?? 0;
    if (bytes > MAX_CHUNK_BYTES) throw bad(`${where}: level ${k} ("${a.path}") has chunks of ${JSON.stringify(a.chunks)} samples, ${(bytes / 2 ** 20).toFixed(0)} MiB decoded; this server reads chunks of at most ${MAX_CHUNK_BYTES / 2 ** 20} MiB (rechunk it, e.g. to 1024 × 1024)`);
  }
  const scales = ms.datasets.map((d) => scaleOf(d.coordinateTransformations));
  for (const [k, a] of arrays.entries()) {
    if (k === 0) continue;
    if (a.dtype !== level0.dtype) throw bad(`${where}: level ${k} has data type ${a.dtype}, level 0 ${level0.dtype}`);
    for (const axis of ['t', 'c', 'z'] as const) {
      if (dim(a.shape, axis) !== dim(level0.shape, axis)) throw bad(`${where}: level ${k} has ${dim(a.shape, axis)} along ${axis}, level 0 has ${dim(level0.shape, axis)}; only x and y may be downsampled`);
    }
    // Levels must halve x and y: by shape (ceil or floor of the exact half) and, where given, by scale.
    for (const axis of ['x', 'y'] as const) {
      const exact = dim(level0.shape, axis) / 2 ** k;
      const got = dim(a.shape, axis);
      if (got !== Math.ceil(exact) && got !== Math.floor(exact)) {
        throw bad(`${where}: level ${k} is ${got} along ${axis} where a 2× pyramid has ${Math.ceil(exact)}; levels downsampled by factors other than 2 are not supported`);
      }
      const s0 = scales[0]?.[named.indexOf(axis)];
      const sk = scales[k]?.[named.indexOf(axis)];
      if (s0 !== undefined && sk !== undefined && Math.abs(sk / s0 / 2 ** k - 1) > 1e-3) {
        throw bad(`${where}: level ${k}'s scale along ${axis} is ${sk / s0}× level 0's, not ${2 ** k}×; levels downsampled by factors other than 2 are not supported`);
      }
    }
  }
  const fillValue = level0.fillValue ?? 0;
  const axisMeta = ms.axes.map((a) => (typeof a === 'string' ? { name: a } : a));
  const s0 = scales[0];
  let physicalSize: NgffImage['physicalSize'];
  if (s0) {
    const unitName = axisMeta[named.indexOf('x')]?.unit ?? 'micrometer';
    const sx = s0[named.indexOf('x')];
    const sy = s0[named.indexOf('y')];
    const sz = named.includes('z') ? s0[named.indexOf('z')] : undefined;
    if (sx !== undefined && sy !== undefined && sx > 0 && sy > 0) physicalSize = { x: sx, y: sy, ...(sz !== undefined && sz > 0 ? { z: sz } : {}), unit: UNITS[unitName] ?? unitName.slice(0, 16) };
  }
  const omero = attrs.omero?.channels ?? [];
  const fullRange: [number, number] = dtype === 'uint8' ? [0, 255] : dtype === 'uint16' ? [0, 65535] : [0, 1];
  const channels: ChannelInfo[] = Array.from({ length: sizeC }, (_, c) => {
    const o = omero[c];
    const color = o?.color && /^[0-9a-fA-F]{6}$/.test(o.color) ? `#${o.color.toLowerCase()}` : DEFAULT_COLOURS[c % DEFAULT_COLOURS.length]!;
    const start = o?.window?.start;
    const end = o?.window?.end;
    const window: [number, number] = start !== undefined && end !== undefined && end > start ? [start, end] : fullRange;
    return { label: (o?.label ?? `C${c}`).slice(0, 128) || `C${c}`, color, window, ...(o?.active === false ? { active: false } : {}) };
  });
  return { ngffVersion: ms.version ?? '0.5', axes: named, levels: arrays, dtype, sourceDtype: level0.dtype, width, height, sizeC, sizeZ, sizeT, fillValue, physicalSize, channels };
}
