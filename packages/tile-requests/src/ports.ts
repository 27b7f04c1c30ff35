import type { RenderJob, TileEvent } from '@tilefarm/contracts';
import type { RenderLane } from './priorities';

// The tile-request service's ports: what it needs from the outside, as small as it needs it.
// packages/queue has the Redis/BullMQ adapters; test/support has in-memory fakes for unit tests.

export type RenderJobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'unknown';

export interface QueuedRender {
  /** One tile, or several of one plane (`job.batch`, only when the queue's batchTiles allows). */
  job: RenderJob;
  /** Lower is sooner (see priorities.ts). */
  priority: number;
  /** Ordinary or heavy renders (priorities.ts laneOf): workers take each lane with its own concurrency. */
  lane: RenderLane;
}

/**
 * The shared render queue, addressed by tile content key (a key always falls in the same lane: its
 * cost decides). A job may carry several tiles (batchTiles); every method still speaks of one tile.
 */
export interface RenderQueuePort {
  /** Most tiles one job may carry (RENDER_BATCH_TILES); absent or 1: one tile per job. */
  readonly batchTiles?: number;
  /**
   * Adds jobs; a tile already queued or running (alone or in a batch) is not added again
   * (coalescing): a batch is queued with the tiles nobody else's job holds, or not at all.
   */
  enqueue(items: QueuedRender[]): Promise<void>;
  /**
   * As enqueue, for tiles nobody in this process asked for yet, counting one demand for each of
   * them (TileDemandPort.add) in the same atomic step as its claim: the count is in before any job
   * holding the tile can be found, and the caller need not wait for it before claiming. The jobs
   * are added once `skipped` resolves, without its tiles (tiles found failed; their claims are
   * dropped). Optional: a queue of one tile per job has no claims to do it with.
   */
  enqueueWanted?(items: QueuedRender[], skipped: Promise<ReadonlySet<string>>): Promise<void>;
  /** Moves the waiting job holding this tile (the whole batch) to a new priority; false if it is not waiting. */
  reprioritize(key: string, priority: number, lane: RenderLane): Promise<boolean>;
  /**
   * Takes this tile's render out of the queue if its job has not started (a batch job goes when its
   * last tile does); false if it is running, done, or gone.
   */
  withdraw(key: string, lane: RenderLane): Promise<boolean>;
  /**
   * Whether a job for this key is queued, running, or waiting to be retried: one existence check,
   * what the sweep asks of each tile pending too long (a state probe visits every job set, and the
   * sweep runs hardest when the system is slowest).
   */
  exists(key: string, lane: RenderLane): Promise<boolean>;
  /** Jobs waiting to start (all priorities). */
  depth(): Promise<number>;
}

/** Tile outcomes announced by the workers (after the tile is stored, or failed for good). */
export interface TileEventsPort {
  /** Starts listening; resolves once the subscription is live. */
  subscribe(listener: (event: TileEvent) => void): Promise<void>;
}

/** Who still wants each tile, across every process that takes requests (a count per key). */
export interface TileDemandPort {
  add(keys: string[]): Promise<void>;
  /** Drops one reference per key; returns the keys nobody wants any more. */
  release(keys: string[]): Promise<string[]>;
  /** Makes sure the tile counts as wanted without adding a second reference. */
  ensure(key: string): Promise<void>;
  count(key: string): Promise<number>;
}

/** Why a tile failed for good. */
export interface TileFailure {
  code: string;
  message: string;
}

/** Tiles that failed for good recently and would fail again (render_timeout), shared by every process. */
export interface FailedTilesPort {
  /** The remembered failure of each key, or undefined. */
  find(keys: string[]): Promise<Array<TileFailure | undefined>>;
}

/** Rendered tiles in storage. */
export interface TileStorePort {
  head(key: string): Promise<unknown>;
  get(key: string): Promise<Buffer | undefined>;
}
