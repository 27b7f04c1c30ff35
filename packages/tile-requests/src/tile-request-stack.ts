import { DatasetCatalog } from '@tilefarm/datasets';
import { BullRenderQueue, TileDemand, TileEventBus, createRedis, type RedisClient } from '@tilefarm/queue';
import type { ObjectStore } from '@tilefarm/storage';
import { SpecRegistry } from './spec-registry';
import { TileDelivery } from './tile-delivery';
import { TilePlanner } from './tile-planner';

/** Everything a process that takes tile requests needs (the API and every gateway), built one way. */
export interface TileRequestStack {
  catalog: DatasetCatalog;
  specs: SpecRegistry;
  planner: TilePlanner;
  /** Fail-fast connection for commands; `subscriber` holds the pub/sub subscriptions. */
  redis: RedisClient;
  subscriber: RedisClient;
  queue: BullRenderQueue;
  delivery: TileDelivery;
  /** Latest render-queue depth, refreshed every `depthIntervalMs`. */
  load: { depth: number };
  close(): Promise<void>;
}

export interface TileRequestStackOptions {
  redisUrl: string;
  prefix: string;
  store: ObjectStore;
  depthIntervalMs: number;
  onDepth?: (depth: number) => void;
  onError: (error: unknown) => void;
}

export function createTileRequestStack(options: TileRequestStackOptions): TileRequestStack {
  const { store, prefix } = options;
  const catalog = new DatasetCatalog(store);
  const specs = new SpecRegistry(store);
  const planner = new TilePlanner(catalog, specs);
  const redis = createRedis(options.redisUrl, 'producer');
  const subscriber = createRedis(options.redisUrl, 'subscriber');
  const queue = new BullRenderQueue({ url: options.redisUrl, prefix });
  const bus = new TileEventBus(prefix, redis, subscriber);
  const demand = new TileDemand(prefix, redis);
  const delivery = new TileDelivery({ store, queue, demand, bus, planner, onError: options.onError });
  const load = { depth: 0 };
  const timer = setInterval(() => {
    queue.depth().then(
      (d) => {
        load.depth = d;
        options.onDepth?.(d);
      },
      () => undefined, // Redis down: readiness and request paths report it
    );
  }, options.depthIntervalMs);
  timer.unref();
  return {
    catalog,
    specs,
    planner,
    redis,
    subscriber,
    queue,
    delivery,
    load,
    async close() {
      clearInterval(timer);
      delivery.stop();
      await queue.close().catch(() => undefined);
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
