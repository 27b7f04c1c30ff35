import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, storageSettings } from '@tilefarm/config';
import { DatasetCatalog } from '@tilefarm/datasets';
import { BullIngestQueue, BullRenderQueue, IngestTracker, TileDemand, TileEventBus, createRedis } from '@tilefarm/queue';
import { openObjectStore } from '@tilefarm/storage';
import { AccessTokens, SpecRegistry, TileDelivery, TilePlanner, TileUrlSigner } from '@tilefarm/tile-requests';
import { createApiMetrics, createLogger, createRegistry } from '@tilefarm/telemetry';
import { buildApp } from './app';
import { ApiConfig } from './config';
import { TileService } from './tile-service';

/** Composition root of the HTTP API. */
async function main(): Promise<void> {
  const config = loadConfig(ApiConfig, process.env);
  const logger = createLogger('api', config.LOG_LEVEL);
  const registry = createRegistry('api');
  const metrics = createApiMetrics(registry);
  const store = openObjectStore(storageSettings(config));
  const catalog = new DatasetCatalog(store);
  const specs = new SpecRegistry(store);
  const planner = new TilePlanner(catalog, specs);
  const redis = createRedis(config.REDIS_URL, 'producer');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  const queue = new BullRenderQueue({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX });
  const bus = new TileEventBus(config.REDIS_PREFIX, redis, subscriber);
  const demand = new TileDemand(config.REDIS_PREFIX, redis);
  const delivery = new TileDelivery({ store, queue, demand, bus, planner, onError: (e) => logger.warn({ err: e }, 'tile sweep failed') });
  const tileBase = (config.TILE_BASE_URL ?? `http://localhost:${config.PORT}`).replace(/\/$/, '');
  const signer = TileUrlSigner.parse(config.URL_SIGNING_KEYS);
  const access = { tokens: AccessTokens.parse(config.ACCESS_TOKENS), signer, catalog };
  const load = { depth: 0 };
  const tiles = new TileService({ planner, delivery, store, metrics, tileUrl: (key) => signer.url(tileBase, key), waitMs: config.TILE_WAIT_MS, overloaded: () => load.depth >= config.MAX_QUEUE_DEPTH });
  const ingestQueue = new BullIngestQueue({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX });
  const ingests = { tracker: new IngestTracker(config.REDIS_PREFIX, redis), queue: ingestQueue, ingestRoot: config.INGEST_ROOT };
  const viewerDir = config.VIEWER_DIR ?? resolve(__dirname, '../../viewer/dist');
  let stopping = false;
  const app = buildApp({ logger, registry, metrics, redis, store, catalog, specs, tiles, viewerDir: existsSync(viewerDir) ? viewerDir : undefined, admin: { token: config.ADMIN_TOKEN, queues: [queue.queue] }, gatewayPublicUrl: config.GATEWAY_PUBLIC_URL, ingests, access, isStopping: () => stopping });

  // The subscription is live before the first request can wait on it.
  void delivery.start().catch((e) => logger.error({ err: e }, 'tile event subscription failed'));
  const server = app.listen(config.PORT, config.HOST, () => {
    logger.info({ port: (server.address() as AddressInfo).port, storage: store.kind, adminDashboard: config.ADMIN_TOKEN ? '/admin/queues' : 'off (no ADMIN_TOKEN)' }, 'api ready');
  });
  const depthTimer = setInterval(() => {
    queue.depth().then(
      (d) => {
        load.depth = d;
        metrics.queueDepth.set(d);
      },
      () => undefined,
    );
  }, 2000).unref();

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true; // readiness turns 503 first
    logger.info({ signal }, 'stopping');
    clearInterval(depthTimer);
    delivery.stop();
    const closed = new Promise<void>((r) => server.close(() => r()));
    // Keep-alive connections go idle as their last request finishes: close them as they do, so the
    // drain ends when the work does, not at the timeout.
    const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
    await Promise.race([closed, new Promise((r) => setTimeout(r, config.SHUTDOWN_TIMEOUT_MS).unref())]);
    clearInterval(idleSweep);
    await queue.close().catch(() => undefined);
    await ingestQueue.close();
    redis.disconnect();
    subscriber.disconnect();
    await store.close?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(e.message);
  else console.error(e);
  process.exit(1);
});
