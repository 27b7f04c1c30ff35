import { readTileEvent, type TileEvent } from '@tilefarm/contracts';
import type { TileEventsPort } from '@tilefarm/tile-requests';
import { JsonChannel } from './json-channel';
import type { RedisClient } from './redis-connection';

/** The pub/sub channel of tile outcomes (workers publish through TileSettlement). */
export function tileEventsChannel(prefix: string): string {
  return `${prefix}:tile-events`;
}

const TILE_EVENT_READER = {
  safeParse(raw: unknown): { success: true; data: TileEvent } | { success: false } {
    const data = readTileEvent(raw);
    return data ? { success: true, data } : { success: false };
  },
};

/**
 * Tile outcomes fan out from workers to every gateway and API process over Redis pub/sub.
 * Pub/sub is at-most-once: gateways re-check storage for pending tiles (TileRequestService's sweep),
 * so a lost message delays a tile, never loses it.
 */
export class TileEventBus implements TileEventsPort {
  private readonly channel: JsonChannel<TileEvent> | undefined;
  private readonly name: string;

  constructor(
    prefix: string,
    private readonly publisher: RedisClient,
    subscriber?: RedisClient,
  ) {
    this.name = tileEventsChannel(prefix);
    // Read by hand (readTileEvent: what the schema accepts, at a fraction of its cost): every process hears every tile's event.
    this.channel = subscriber ? new JsonChannel(this.name, TILE_EVENT_READER, subscriber) : undefined;
  }

  async publish(event: TileEvent): Promise<void> {
    await this.publisher.publish(this.name, JSON.stringify(event));
  }

  /** Starts listening; resolves once the subscription is active (subscribe before checking storage). */
  async subscribe(listener: (event: TileEvent) => void): Promise<void> {
    if (!this.channel) throw new Error('TileEventBus was built without a subscriber connection');
    await this.channel.subscribe(listener);
  }
}
