import type { TileEvent } from '@tilefarm/contracts';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';
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

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.channel = tileEventsChannel(prefix);
    this.demand = tileDemandKey(prefix);
  }

  /** Publishes the event, then clears the tile's demand; returns how many still wanted it (0: nobody). */
  async announce(event: TileEvent): Promise<number> {
    return Number(await ANNOUNCE.run(this.redis, [this.demand, this.channel, JSON.stringify(event), event.key]));
  }
}

const ANNOUNCE = RedisScript.fromFile('announce-and-settle.keys-1.lua');
