import type { TileAddress } from '@tilefarm/contracts';
import { TIER, nearSliceTier } from './priorities';

export interface ViewState {
  dataset: string;
  specId: string;
  level: number;
  z: number;
  t: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** +1 / -1 while the viewer scrolls up / down through Z, 0 if unknown. */
  zDirection?: number;
}

/**
 * How much a viewer at `view` wants `tile` (a tier of priorities.ts), or `undefined` if it has
 * moved on and the tile should be withdrawn: visible, the ring one tile around, ±k Z slices
 * (behind the scroll direction last), other levels of the same view; anything else withdrawn.
 */
export function tierFor(view: ViewState | undefined, dataset: string, specId: string, tile: TileAddress, k: number): number | undefined {
  if (!view) return TIER.visible;
  if (dataset !== view.dataset || specId !== view.specId || tile.t !== view.t) return undefined;
  if (tile.level !== view.level) return TIER.otherLevel;
  const dz = Math.abs(tile.z - view.z);
  if (dz > k) return undefined;
  const inRect = tile.x >= view.x0 && tile.x <= view.x1 && tile.y >= view.y0 && tile.y <= view.y1;
  const inRing = tile.x >= view.x0 - 1 && tile.x <= view.x1 + 1 && tile.y >= view.y0 - 1 && tile.y <= view.y1 + 1;
  if (!inRing) return undefined;
  if (dz === 0) return inRect ? TIER.visible : TIER.ring;
  const behind = view.zDirection !== undefined && view.zDirection !== 0 && Math.sign(tile.z - view.z) === -view.zDirection;
  return nearSliceTier(dz, behind, k);
}

/** The tiles asked for on a viewer's behalf when its viewport moves: visible, ring, then ±k slices. */
export function tilesAround(view: ViewState, k: number, cols: number, rows: number, sizeZ: number): Array<{ z: number; x: number; y: number }> {
  const out: Array<{ z: number; x: number; y: number }> = [];
  const x0 = Math.max(0, view.x0 - 1);
  const x1 = Math.min(cols - 1, view.x1 + 1);
  const y0 = Math.max(0, view.y0 - 1);
  const y1 = Math.min(rows - 1, view.y1 + 1);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) out.push({ z: view.z, x, y });
  for (let dz = 1; dz <= k; dz++) {
    for (const z of [view.z + dz, view.z - dz]) {
      if (z < 0 || z >= sizeZ) continue;
      for (let y = Math.max(0, view.y0); y <= Math.min(rows - 1, view.y1); y++) {
        for (let x = Math.max(0, view.x0); x <= Math.min(cols - 1, view.x1); x++) out.push({ z, x, y });
      }
    }
  }
  return out;
}
