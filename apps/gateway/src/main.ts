import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, storageSettings } from '@tilefarm/config';
import { DatasetCatalog } from '@tilefarm/datasets';
import { BullRenderQueue, IngestProgressBus, IngestTracker, TileDemand, TileEventBus, createRedis, ingestEventOf } from '@tilefarm/queue';
import { openObjectStore } from '@tilefarm/storage';
import { AccessTokens, SpecRegistry, TileDelivery, TilePlanner, TileUrlSigner } from '@tilefarm/tile-requests';
import { createGatewayMetrics, createLogger, createRegistry } from '@tilefarm/telemetry';
import { GatewayConfig } from './config';
import { IngestWatchers } from './ingest-watch';
import { SocketGateway } from './socket-gateway';
import { authenticateHandshake } from './socket-auth';

/** Composition root of a Socket.IO gateway; run several behind a load balancer with sticky sessions or WebSocket only. */
async function main(): Promise<void> {
  const config = loadConfig(GatewayConfig, process.env);
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const registry = createRegistry('gateway');
  const metrics = createGatewayMetrics(registry);
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
  await delivery.start();
  const ingestTracker = new IngestTracker(config.REDIS_PREFIX, redis);
  const ingestBus = new IngestProgressBus(config.REDIS_PREFIX, subscriber);

  const load = { depth: 0, shedding: false };
  const depthTimer = setInterval(() => {
    queue.depth().then(
      (d) => {
        load.depth = d;
        load.shedding = d >= config.MAX_QUEUE_DEPTH;
        metrics.queueDepth.set(d);
      },
      () => undefined,
    );
  }, 500).unref();

  let stopping = false;
  const http = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(stopping ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: !stopping, viewers: gateway.viewerCount }));
    } else if (req.url === '/metrics') {
      void registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      });
    } else if (!req.url?.startsWith('/socket.io')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'No such resource.' } }));
    }
  });
  const origins = config.ALLOWED_ORIGINS.trim() === '*' ? '*' : config.ALLOWED_ORIGINS.split(',').map((o) => o.trim());
  const tileBase = config.TILE_BASE_URL.replace(/\/$/, '');
  const tokens = AccessTokens.parse(config.ACCESS_TOKENS);
  const signer = TileUrlSigner.parse(config.URL_SIGNING_KEYS);
  const gateway = new SocketGateway(http, {
    authenticate: (handshake) => authenticateHandshake(tokens, handshake),
    allowedOrigins: origins,
    maxEventBytes: config.MAX_EVENT_BYTES,
    eventsPerSecond: config.EVENTS_PER_SECOND,
    logger,
    metrics,
    session: {
      planner,
      delivery,
      store,
      metrics,
      limits: { prefetchZ: config.PREFETCH_Z, maxPending: config.MAX_PENDING_PER_VIEWER, queuedNoticeDepth: config.QUEUED_NOTICE_DEPTH },
      tileUrl: (key) => signer.url(tileBase, key),
      load: () => load,
    },
    ingest: new IngestWatchers(async (jobId) => {
      const status = await ingestTracker.get(jobId);
      return status && ingestEventOf(status);
    }),
  });
  await ingestBus.subscribe((event) => gateway.forwardIngestProgress(event));
  http.listen(config.GATEWAY_PORT, config.HOST, () => {
    logger.info({ port: (http.address() as AddressInfo).port }, 'gateway ready');
  });

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    clearInterval(depthTimer);
    delivery.stop();
    await Promise.race([gateway.close(), new Promise((r) => setTimeout(r, config.SHUTDOWN_TIMEOUT_MS).unref())]);
    await queue.close().catch(() => undefined);
    redis.disconnect();
    subscriber.disconnect();
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
