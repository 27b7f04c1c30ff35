import type { TileEvent } from '@tilefarm/contracts';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';
import { renderClaimsKey } from './render-claims';
import { tileDemandKey } from './tile-demand';
import { tileEventsChannel } from './tile-event-bus';

/**
 * The worker's last step for a tile: announce its outcome on the tile-events channel and clear its
 * demand, in one script (one round trip, the keys sent once; it was a PUBLISH and a MULTI/HGET/HDEL/EXEC).
 * Callers announce only once the tile is durably stored (or failed for good).
 */
export class TileSettlement {
  private readonly channel: string;
  private readonly demand: string;
  private readonly claims: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.channel = tileEventsChannel(prefix);
    this.demand = tileDemandKey(prefix);
    this.claims = renderClaimsKey(prefix);
  }

  /** Publishes the event, then clears the tile's demand; returns how many still wanted it (0: nobody). */
  async announce(event: TileEvent): Promise<number> {
    return Number(await ANNOUNCE.run(this.redis, [this.demand, this.channel, JSON.stringify(event), event.key]));
  }

  /**
   * The same for a tile of a batch job (render-claims.ts): the job's claim on it is dropped in the
   * same step. A failure is announced only while the job still owns the tile (an earlier attempt
   * may have announced it ready). Returns how many still wanted it, or -1 when nothing was announced.
   */
  async announceClaimed(event: TileEvent, jobId: string): Promise<number> {
    return Number(await ANNOUNCE_CLAIMED.run(this.redis, [this.demand, this.claims, this.channel, JSON.stringify(event), event.key, jobId, event.type === 'failed' ? '1' : '0']));
  }
}

const ANNOUNCE = RedisScript.fromFile('announce-and-settle.keys-1.lua');
const ANNOUNCE_CLAIMED = RedisScript.fromFile('announce-claimed-tile.keys-2.lua');
