/**
 * Every render priority in one table (lower is sooner, BullMQ's convention). Every job gets one:
 * unprioritized BullMQ jobs would jump the line.
 */
export const TIER = {
  /**
   * Tiles on the screen of a viewer that has been shown no tile of its view yet (it just opened a
   * dataset or a spec): its screen is blank, while a viewer already showing its view still sees the
   * slice it scrolled from until the new one arrives. So every such viewer's first tile comes
   * before anyone's visible tiles of a later slice (round-robin among them, like every tier).
   */
  emptyScreen: 0,
  /** Tiles on a viewer's screen, and tiles a viewer asked for before it sent any viewport. */
  visible: 1,
  /** The ring one tile around the screen. */
  ring: 2,
  /** A plain HTTP request, which holds a connection open while it waits. */
  http: 2,
  /** Other pyramid levels of the same view (coarser placeholders while zooming). */
  otherLevel: 6,
  /** A tile a viewer asked for explicitly that lies outside its current view. */
  outsideView: 10,
} as const;

/**
 * Z slices near the view: after the ring, one tier per slice of distance; while the viewer scrolls
 * through Z, slices behind it come after every slice ahead (they are the first to fall out of
 * range, so rendering them early is the likeliest waste).
 */
export function nearSliceTier(dz: number, behind: boolean, k: number): number {
  return TIER.ring + dz + (behind ? k : 0);
}

/**
 * Time points ahead of the view (the next ones playback will show), on the slice on screen: one
 * tier per time point of distance, level with a Z slice at the same distance ahead: playback and
 * Z stepping are equally likely next moves, and the nearest of either is wanted first.
 */
export function nearTimeTier(dt: number): number {
  return TIER.ring + dt;
}

/** Job priorities per tier: room for this many places before tiles share one. */
const FAIR_SLOTS = 1000;

/**
 * Round-robin within a tier: the i-th tile of a viewer's request at tier T gets priority
 * T·1000 + i, so every viewer's first visible tile comes before anyone's second, instead of one
 * viewer's whole screen queueing ahead of the next viewer's (BullMQ is FIFO within a priority).
 */
export function jobPriority(tier: number, ordinal: number): number {
  // BullMQ reads priority 0 as none (such a job would jump every line): tier 0's places start at 1.
  const first = tier === 0 ? 1 : 0;
  return tier * FAIR_SLOTS + first + Math.min(ordinal, FAIR_SLOTS - 1 - first);
}

/**
 * Renders costing more than this many sample operations (render-cost.ts; an ordinary 3-channel
 * 512² tile is 1.6 M) are heavy: they go to the workers' heavy lane, where each worker runs at most
 * WORKER_HEAVY_CONCURRENCY of them beside its ordinary renders, so expensive tiles never take the
 * slots cheap tiles need (and they composite in bands that yield, see packages/render).
 */
export const HEAVY_RENDER_COST = 4_000_000;

export type RenderLane = 'render' | 'heavy';

export function laneOf(cost: number): RenderLane {
  return cost > HEAVY_RENDER_COST ? 'heavy' : 'render';
}

/** The unit of a fair share: about what an ordinary tile costs. */
const SHARE_UNIT_COST = 2_000_000;

/**
 * Fair share: a tile weighs its cost in ordinary tiles (at least 1). Each owner (a viewer, and the
 * tenant it acts for) carries the extra weight of its tiles still pending, and a new tile of that
 * owner is placed that many places later within its tier: a viewer whose tile costs 50 ordinary
 * tiles lets 50 of everyone else's tiles of the same tier go first, instead of making them wait.
 * Ordinary tiles weigh 1 and add nothing, so their order is the round-robin above.
 */
export function shareWeight(cost: number): number {
  return Math.max(1, Math.ceil(cost / SHARE_UNIT_COST));
}
