import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, environmentWithFile, loadConfig, storageSettings, tileBaseUrl } from '@tilefarm/config';
import { DatasetCatalog } from '@tilefarm/datasets';
import { IngestProgressBus, IngestTracker, ingestEventOf, openTileRequestAdapters } from '@tilefarm/queue';
import { openObjectStore } from '@tilefarm/storage';
import { AccessTokens, SpecRegistry, TilePlanner, TileRequestService, TileUrlSigner } from '@tilefarm/tile-requests';
import { answerNotFound, answerOpsRequest, createGatewayMetrics, createLogger, createRegistry } from '@tilefarm/telemetry';
import { GatewayConfig } from './config';
import { IngestWatchers } from './ingest-watch';
import { SocketGateway } from './socket-gateway';
import { viewerCounters } from './viewer-session';
import { authenticateHandshake } from './socket-auth';

/** Composition root of a Socket.IO gateway; run several behind a load balancer with sticky sessions or WebSocket only. */
async function main(): Promise<void> {
  const config = loadConfig(GatewayConfig, environmentWithFile(process.env));
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const registry = createRegistry('gateway');
  const metrics = createGatewayMetrics(registry);
  const store = openObjectStore(storageSettings(config));
  const adapters = openTileRequestAdapters({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX });
  const { redis, subscriber } = adapters;
  const service = new TileRequestService({
    planner: new TilePlanner(new DatasetCatalog(store), new SpecRegistry(store), { maxRenderCost: config.MAX_RENDER_COST }),
    ...adapters,
    store,
    maxQueueDepth: config.MAX_QUEUE_DEPTH,
    depthIntervalMs: 500,
    onDepth: (d) => metrics.queueDepth.set(d),
    onError: (e) => logger.warn({ err: e }, 'tile sweep failed'),
  });
  await service.start();
  const ingestTracker = new IngestTracker(config.REDIS_PREFIX, redis);
  const ingestBus = new IngestProgressBus(config.REDIS_PREFIX, subscriber);

  let stopping = false;
  const http = createServer((req, res) => {
    // socket.io answers its own path on this server.
    if (req.url?.startsWith('/socket.io')) return;
    if (!answerOpsRequest(req, res, registry, () => ({ ok: !stopping, viewers: gateway.viewerCount }))) answerNotFound(res);
  });
  const origins = config.ALLOWED_ORIGINS.trim() === '*' ? '*' : config.ALLOWED_ORIGINS.split(',').map((o) => o.trim());
  const tileBase = tileBaseUrl(config);
  const tokens = AccessTokens.parse(config.ACCESS_TOKENS);
  const signer = TileUrlSigner.parse(config.URL_SIGNING_KEYS, { ttlSeconds: config.URL_SIGNATURE_TTL_S });
  const gateway = new SocketGateway(http, {
    authenticate: (handshake) => authenticateHandshake(tokens, handshake),
    allowedOrigins: origins,
    maxEventBytes: config.MAX_EVENT_BYTES,
    eventsPerSecond: config.EVENTS_PER_SECOND,
    logger,
    metrics,
    session: {
      service,
      counters: viewerCounters(metrics),
      limits: { prefetchZ: config.PREFETCH_Z, prefetchT: config.PREFETCH_T, maxPending: config.MAX_PENDING_PER_VIEWER, queuedNoticeDepth: config.QUEUED_NOTICE_DEPTH },
      tileUrl: (key) => signer.url(tileBase, key),
    },
    ingest: new IngestWatchers(async (jobId) => {
      const status = await ingestTracker.get(jobId);
      return status && { event: ingestEventOf(status), tenant: status.tenant };
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
    await Promise.race([gateway.close(), new Promise((r) => setTimeout(r, config.SHUTDOWN_TIMEOUT_MS).unref())]);
    service.stop();
    await adapters.close();
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
