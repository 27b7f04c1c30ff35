import type { TileAddress, TileRect } from '@tilefarm/contracts';
import { TIER, nearSliceTier, nearTimeTier } from './priorities';

/** What the gateway knows of a viewer's view: its tile rectangle, and which way it moves. */
export interface ViewState extends TileRect {
  dataset: string;
  specId: string;
  /** +1 / -1 while the viewer scrolls up / down through Z, 0 if unknown. */
  zDirection?: number;
  /** -1 while the viewer steps back through time; forward (playback's way) otherwise. */
  tDirection?: number;
  /** Time points of the dataset (playback wraps from the last to the first). */
  sizeT?: number;
}

/** How far ahead of the view the gateway reaches: ±z slices, and time points ahead. */
export interface Reach {
  z: number;
  t: number;
}

/**
 * How many time points `t` lies ahead of the view in the direction it moves through time (with
 * playback's wrap from the last time point to the first), or undefined if it is not ahead.
 */
function timePointsAhead(view: ViewState, t: number): number | undefined {
  const sizeT = view.sizeT ?? Number.POSITIVE_INFINITY;
  const dir = view.tDirection === -1 ? -1 : 1;
  let d = dir * (t - view.t);
  if (Number.isFinite(sizeT)) d = ((d % sizeT) + sizeT) % sizeT;
  return d > 0 ? d : undefined;
}

/** The next `k` time points in the view's direction of travel, wrapping like playback, without the one on screen. */
export function timePointsNext(view: ViewState, k: number): number[] {
  const sizeT = view.sizeT ?? 1;
  const dir = view.tDirection === -1 ? -1 : 1;
  const out: number[] = [];
  for (let i = 1; i <= Math.min(k, sizeT - 1); i++) out.push((((view.t + dir * i) % sizeT) + sizeT) % sizeT);
  return out;
}

/**
 * How much a viewer at `view` wants `tile` (a tier of priorities.ts), or `undefined` if it has
 * moved on and the tile should be withdrawn: visible, the ring one tile around, ±k Z slices
 * (behind the scroll direction last), the screen at the next `reach.t` time points, other levels
 * of the same view; anything else withdrawn.
 */
export function tierFor(view: ViewState | undefined, dataset: string, specId: string, tile: TileAddress, reach: number | Reach): number | undefined {
  if (!view) return TIER.visible;
  const { z: k, t: kT } = typeof reach === 'number' ? { z: reach, t: 0 } : reach;
  if (dataset !== view.dataset || specId !== view.specId) return undefined;
  const inRect = tile.x >= view.x0 && tile.x <= view.x1 && tile.y >= view.y0 && tile.y <= view.y1;
  if (tile.t !== view.t) {
    // Time points ahead: the screen on the slice on screen, at the level on screen.
    const dt = timePointsAhead(view, tile.t);
    if (dt === undefined || dt > kT || tile.z !== view.z || tile.level !== view.level || !inRect) return undefined;
    return nearTimeTier(dt);
  }
  if (tile.level !== view.level) return TIER.otherLevel;
  const dz = Math.abs(tile.z - view.z);
  if (dz > k) return undefined;
  const inRing = tile.x >= view.x0 - 1 && tile.x <= view.x1 + 1 && tile.y >= view.y0 - 1 && tile.y <= view.y1 + 1;
  if (!inRing) return undefined;
  if (dz === 0) return inRect ? TIER.visible : TIER.ring;
  const behind = view.zDirection !== undefined && view.zDirection !== 0 && Math.sign(tile.z - view.z) === -view.zDirection;
  return nearSliceTier(dz, behind, k);
}

/** A rectangle of tiles at one level, inclusive; empty when x0 > x1 or y0 > y1. */
export type TileSpan = Pick<TileRect, 'x0' | 'y0' | 'x1' | 'y1'>;

/**
 * The rectangle a viewer can actually be looking at: the one it named (corners in any order),
 * clipped to the level's grid, then cut around its centre to at most `maxTiles` tiles. A screen
 * shows a few hundred tiles; a rectangle over a whole 131072² slide names 262,144, and every
 * per-viewport cost (ranking, prefetch, planning) follows the rectangle's area, so it is bounded
 * here, before anything is computed from it.
 */
export function visibleRect(named: TileSpan, cols: number, rows: number, maxTiles: number): TileSpan {
  const x0 = Math.min(named.x0, named.x1);
  const y0 = Math.min(named.y0, named.y1);
  const x1 = Math.min(Math.max(named.x0, named.x1), cols - 1);
  const y1 = Math.min(Math.max(named.y0, named.y1), rows - 1);
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  if (w <= 0 || h <= 0 || w * h <= maxTiles) return { x0, y0, x1, y1 };
  const [cw, ch] = fitArea(w, h, Math.max(1, maxTiles));
  const cx0 = x0 + Math.floor((w - cw) / 2);
  const cy0 = y0 + Math.floor((h - ch) / 2);
  return { x0: cx0, y0: cy0, x1: cx0 + cw - 1, y1: cy0 + ch - 1 };
}

/** The largest w'×h' ≤ area with w' ≤ w, h' ≤ h, close to w×h's aspect ratio (a long strip stays a strip). */
function fitArea(w: number, h: number, area: number): [number, number] {
  const scale = Math.sqrt(area / (w * h));
  const shortSide = Math.min(w, h);
  const longSide = Math.max(w, h);
  // The short side scaled is at most √area (rounded: ≤ area), so the long side always gets at least one tile.
  let s = Math.min(shortSide, Math.max(1, Math.round(shortSide * scale)));
  const l = Math.min(longSide, Math.floor(area / s));
  s = Math.min(shortSide, Math.floor(area / l));
  return w <= h ? [s, l] : [l, s];
}

/**
 * The tiles asked for on a viewer's behalf when its viewport moves, best first: visible, the ring
 * one tile around, the screen on ±1 … ±k slices, then the screen at the next `kT` time points (so
 * playback finds its frames rendered). A generator, so a caller that stops at its budget never
 * builds the rest.
 */
export function* tilesAround(view: ViewState, reach: number | Reach, cols: number, rows: number, sizeZ: number): Generator<{ z: number; t: number; x: number; y: number }> {
  const { z: k, t: kT } = typeof reach === 'number' ? { z: reach, t: 0 } : reach;
  const vx0 = Math.max(0, view.x0);
  const vx1 = Math.min(cols - 1, view.x1);
  const vy0 = Math.max(0, view.y0);
  const vy1 = Math.min(rows - 1, view.y1);
  function* screen(z: number, t: number): Generator<{ z: number; t: number; x: number; y: number }> {
    for (let y = vy0; y <= vy1; y++) for (let x = vx0; x <= vx1; x++) yield { z, t, x, y };
  }
  yield* screen(view.z, view.t);
  const rx0 = Math.max(0, view.x0 - 1);
  const rx1 = Math.min(cols - 1, view.x1 + 1);
  const ry0 = Math.max(0, view.y0 - 1);
  const ry1 = Math.min(rows - 1, view.y1 + 1);
  for (let y = ry0; y <= ry1; y++) {
    const edgeRow = y < view.y0 || y > view.y1;
    for (let x = rx0; x <= rx1; x++) {
      if (edgeRow || x < view.x0 || x > view.x1) yield { z: view.z, t: view.t, x, y };
    }
  }
  for (let dz = 1; dz <= k; dz++) {
    for (const z of [view.z + dz, view.z - dz]) {
      if (z >= 0 && z < sizeZ) yield* screen(z, view.t);
    }
  }
  for (const t of timePointsNext(view, kT)) yield* screen(view.z, t);
}
