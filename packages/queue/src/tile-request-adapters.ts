import { BullRenderQueue } from './bullmq-render-queue';
import { createRedis, type RedisClient } from './redis-connection';
import { TileDemand } from './tile-demand';
import { FailedTiles } from './failed-tiles';
import { TileEventBus } from './tile-event-bus';

/** The Redis/BullMQ side of the tile-request service's ports, for a process that takes tile requests. */
export interface TileRequestAdapters {
  queue: BullRenderQueue;
  events: TileEventBus;
  demand: TileDemand;
  failures: FailedTiles;
  /** Fail-fast connection for commands (readiness checks, ingest status share it). */
  redis: RedisClient;
  /** Holds pub/sub subscriptions (tile events; ingest progress may share it). */
  subscriber: RedisClient;
  close(): Promise<void>;
}

/** Opens the connections the adapters need; the app's main.ts owns their lifetime (close()). */
export function openTileRequestAdapters(connection: { url: string; prefix: string }, options: { /** RENDER_BATCH_TILES */ batchTiles?: number } = {}): TileRequestAdapters {
  const redis = createRedis(connection.url, 'producer');
  const subscriber = createRedis(connection.url, 'subscriber');
  const queue = new BullRenderQueue(connection, options);
  return {
    queue,
    events: new TileEventBus(connection.prefix, redis, subscriber),
    demand: new TileDemand(connection.prefix, redis),
    failures: new FailedTiles(connection.prefix, redis),
    redis,
    subscriber,
    async close() {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
