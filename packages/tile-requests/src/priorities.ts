/**
 * Every render priority in one table (lower is sooner, BullMQ's convention). Every job gets one:
 * unprioritized BullMQ jobs would jump the line.
 */
export const TIER = {
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
  return tier * FAIR_SLOTS + Math.min(ordinal, FAIR_SLOTS - 1);
}
