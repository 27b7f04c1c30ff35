import { DTYPE_MAX, type DatasetStats, type PlaneStats, TilefarmError } from '@tilefarm/contracts';
import { type Interval, formulaBounds } from './formula-bounds';
import type { PlannedChannel, RenderPlan } from './render-plan';

/**
 * Windows in raw units for one tile. "auto" windows come only from the dataset's stored per-plane
 * statistics, never from the tile's own pixels, so every tile of a plane gets the same window and
 * neighbours match.
 *
 * - "auto" = plane min..max; "auto:F" = the F and 1-F percentiles (a stored fraction if it is one,
 *   else linear interpolation between the neighbouring stored fractions, with 0 = min and 1 = max).
 * - With a Z projection the per-slice bounds are combined like the pixels are: max → the max of
 *   the slices' bounds, mean → their mean, sum → their sum. This is an estimate of the projected
 *   image's range (exact for the upper end of max/sum), but it is the same for every tile.
 * - Formula channels: interval arithmetic over the bounds of the channels they read (see
 *   formula-bounds.ts); where no finite bound exists an explicit window is required.
 * - Without statistics (stats undefined, or a plane missing) the dtype's full range is used:
 *   0..255, 0..65535, and 0..1 for float32 (times the slice count for sum projections).
 */

const statsIndex = new WeakMap<DatasetStats, Map<string, PlaneStats>>();

function planeStats(stats: DatasetStats | undefined, c: number, z: number, t: number): PlaneStats | undefined {
  if (!stats) return undefined;
  let index = statsIndex.get(stats);
  if (!index) {
    index = new Map(stats.planes.map((p) => [`${p.c}:${p.z}:${p.t}`, p]));
    statsIndex.set(stats, index);
  }
  return index.get(`${c}:${z}:${t}`);
}

/** Percentile at fraction f from a plane's stored percentiles (STORED_PERCENTILES; min/max stand in for 0 and 1). */
export function percentileAt(p: PlaneStats, f: number): number {
  const known: [number, number][] = [
    [0, p.min],
    [1, p.max],
  ];
  for (const [k, v] of Object.entries(p.percentiles)) {
    const frac = Number(k);
    if (Number.isFinite(frac) && Number.isFinite(v)) known.push([frac, v]);
  }
  let below: [number, number] = [0, p.min];
  let above: [number, number] = [1, p.max];
  for (const pair of known) {
    const [frac] = pair;
    if (Math.abs(frac - f) < 1e-12) return pair[1];
    if (frac < f && frac >= below[0]) below = pair;
    if (frac > f && frac <= above[0]) above = pair;
  }
  const span = above[0] - below[0];
  return span > 0 ? below[1] + ((f - below[0]) / span) * (above[1] - below[1]) : below[1];
}

function sliceBounds(stats: DatasetStats | undefined, c: number, z: number, t: number, trim: number): Interval | undefined {
  const p = planeStats(stats, c, z, t);
  if (!p) return undefined;
  return trim === 0 ? [p.min, p.max] : [percentileAt(p, trim), percentileAt(p, 1 - trim)];
}

/** Auto bounds of dataset channel c as the render sees it (after projection). */
export function sourceAutoBounds(plan: RenderPlan, stats: DatasetStats | undefined, c: number, z: number, t: number, trim: number): Interval {
  const proj = plan.projection;
  const full = DTYPE_MAX[plan.manifest.dtype];
  if (!proj) return sliceBounds(stats, c, z, t, trim) ?? [0, full];
  const depth = proj.z1 - proj.z0 + 1;
  let lo = proj.type === 'max' ? -Infinity : 0;
  let hi = lo;
  for (let zz = proj.z0; zz <= proj.z1; zz++) {
    const b = sliceBounds(stats, c, zz, t, trim);
    if (!b) return [0, proj.type === 'sum' ? full * depth : full];
    if (proj.type === 'max') {
      lo = Math.max(lo, b[0]);
      hi = Math.max(hi, b[1]);
    } else {
      lo += b[0];
      hi += b[1];
    }
  }
  return proj.type === 'mean' ? [lo / depth, hi / depth] : [lo, hi];
}

export function channelWindow(plan: RenderPlan, ch: PlannedChannel, stats: DatasetStats | undefined, z: number, t: number): Interval {
  const w = ch.window;
  if (w.kind === 'explicit') return [w.lo, w.hi];
  if (ch.input.kind === 'source') return sourceAutoBounds(plan, stats, ch.input.channel, z, t, w.trim);
  const b = formulaBounds(ch.input.ast, (c) => sourceAutoBounds(plan, stats, c, z, t, w.trim));
  if (!b) {
    throw new TilefarmError(
      'invalid_spec',
      `channels.${ch.specIndex}.window: an automatic window cannot bound this formula (it divides by, or takes the log of, a range reaching 0); give an explicit [lo, hi]`,
    );
  }
  return b;
}
