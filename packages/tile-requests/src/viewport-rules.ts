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

/**
 * The tiles asked for on a viewer's behalf when its viewport moves: visible, ring, then ±k slices,
 * then the screen at the next `kT` time points (so playback finds its frames rendered).
 */
export function tilesAround(view: ViewState, reach: number | Reach, cols: number, rows: number, sizeZ: number): Array<{ z: number; t: number; x: number; y: number }> {
  const { z: k, t: kT } = typeof reach === 'number' ? { z: reach, t: 0 } : reach;
  const out: Array<{ z: number; t: number; x: number; y: number }> = [];
  const x0 = Math.max(0, view.x0 - 1);
  const x1 = Math.min(cols - 1, view.x1 + 1);
  const y0 = Math.max(0, view.y0 - 1);
  const y1 = Math.min(rows - 1, view.y1 + 1);
  const screen = (z: number, t: number) => {
    for (let y = Math.max(0, view.y0); y <= Math.min(rows - 1, view.y1); y++) {
      for (let x = Math.max(0, view.x0); x <= Math.min(cols - 1, view.x1); x++) out.push({ z, t, x, y });
    }
  };
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) out.push({ z: view.z, t: view.t, x, y });
  for (let dz = 1; dz <= k; dz++) {
    for (const z of [view.z + dz, view.z - dz]) {
      if (z < 0 || z >= sizeZ) continue;
      screen(z, view.t);
    }
  }
  for (const t of timePointsNext(view, kT)) screen(view.z, t);
  return out;
}
