import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';
import { tileDemandKey } from './tile-demand';

/**
 * Render claims: which job owns each tile's render, when render jobs carry several tiles
 * (RENDER_BATCH_TILES > 1). A batch job cannot be found by a tile key the way a one-tile job is
 * (its BullMQ id is its content key), so coalescing goes through one Redis hash instead: tile key
 * → owning job id, set when the job is enqueued (a tile a live job owns is not queued again),
 * dropped when the worker announces or skips the tile, or when the tile is withdrawn. The scripts
 * are in lua/*claim*.lua with their shared functions in lua/render-claims.lua.
 */
export function renderClaimsKey(prefix: string): string {
  return `${prefix}:render-claims`;
}

/** The sequence that numbers batch job ids (claim-render-tiles.keys-2.lua). */
export function renderBatchSeqKey(prefix: string): string {
  return `${prefix}:render-batch-seq`;
}

/**
 * How long a claim counts as live while its job does not exist yet: the claimer adds the job right
 * after claiming (one round trip). Past it, a claim whose job is gone (removed by BullMQ after too
 * many stalls, or its claimer died before adding it) is taken over by the next enqueue or the sweep.
 */
export const CLAIM_GRACE_MS = 10_000;

/** Whether a job id is a batch job's (claimed tiles) rather than a tile content key. */
export function isClaimedJobId(id: string): boolean {
  return /^b\d+-\d+$/.test(id);
}

const PRELUDE = 'render-claims.lua';
export const CLAIM_TILES = RedisScript.fromFile('claim-render-tiles.keys-2.lua', PRELUDE);
/** CLAIM_TILES counting one demand per tile first, in the same step (BullRenderQueue.enqueueWanted). */
export const CLAIM_WANTED_TILES = RedisScript.fromFile('claim-wanted-render-tiles.keys-3.lua', PRELUDE);
export const CLAIMED_TILE_LIVE = RedisScript.fromFile('claimed-tile-live.keys-1.lua', PRELUDE);
export const PRUNE_CLAIMS = RedisScript.fromFile('prune-render-claims.keys-1.lua', PRELUDE);
export const WITHDRAW_CLAIMED_TILE = RedisScript.fromFile('withdraw-claimed-tile.keys-1.lua');
const TAKE = RedisScript.fromFile('take-claimed-tile.keys-2.lua');

/** The worker's side of claims: may this job render this tile now? */
export class RenderClaims {
  private readonly claims: string;
  private readonly demand: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.claims = renderClaimsKey(prefix);
    this.demand = tileDemandKey(prefix);
  }

  /**
   * Before rendering one tile of a batch job: 'other' when the job does not own it (withdrawn, or
   * settled by an earlier attempt), 'unwanted' when nobody wants it (the claim is dropped at once),
   * else 'render'.
   */
  async take(key: string, jobId: string): Promise<'other' | 'unwanted' | 'render'> {
    const n = Number(await TAKE.run(this.redis, [this.claims, this.demand, key, jobId]));
    return n < 0 ? 'other' : n === 0 ? 'unwanted' : 'render';
  }
}
