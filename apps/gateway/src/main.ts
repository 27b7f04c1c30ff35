// First, before any other module loads: a SIGTERM while they load is kept for runProcess, not fatal.
import '@tilefarm/telemetry/early-signals';
import { createServer } from 'node:http';
import { environmentWithFile, loadConfig, storageSettings, tileBaseUrl } from '@tilefarm/config';
import { DatasetCatalog } from '@tilefarm/datasets';
import { IngestProgressBus, IngestTracker, ingestEventOf, openTileRequestAdapters } from '@tilefarm/queue';
import { openObjectStore } from '@tilefarm/storage';
import { AccessTokens, SpecRegistry, TilePlanner, TileRequestService, TileUrlSigner } from '@tilefarm/tile-requests';
import { answerNotFound, answerOpsRequest, createGatewayMetrics, listen, runProcess, within, type ProcessContext, type RunningProcess } from '@tilefarm/telemetry';
import { GatewayConfig } from './config';
import { IngestWatchers } from './ingest-watch';
import { SocketGateway } from './socket-gateway';
import { viewerCounters } from './viewer-session';
import { authenticateHandshake } from './socket-auth';
import { EventLoopPressure } from './event-loop-pressure';

/**
 * Event-loop utilization above which the gateway counts as busy and spaces viewports further apart
 * (ViewerTilesDeps.busy): a gateway serving viewers normally runs far below it.
 */
const BUSY_EVENT_LOOP = 0.8;

/** Composition root of a Socket.IO gateway; run several behind a load balancer with sticky sessions or WebSocket only. */
async function start({ config, logger, registry, isStopping }: ProcessContext<GatewayConfig>): Promise<RunningProcess> {
  const metrics = createGatewayMetrics(registry);
  const store = openObjectStore(storageSettings(config));
  const adapters = openTileRequestAdapters({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX }, { batchTiles: config.RENDER_BATCH_TILES });
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

  const pressure = new EventLoopPressure();
  const http = createServer((req, res) => {
    // socket.io answers its own path on this server.
    if (req.url?.startsWith('/socket.io')) return;
    if (!answerOpsRequest(req, res, registry, () => ({ ok: !isStopping(), viewers: gateway.viewerCount }))) answerNotFound(res);
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
      limits: { prefetchZ: config.PREFETCH_Z, prefetchT: config.PREFETCH_T, maxPending: config.MAX_PENDING_PER_VIEWER, queuedNoticeDepth: config.QUEUED_NOTICE_DEPTH, viewportMaxTiles: config.VIEWPORT_MAX_TILES, viewportIntervalMs: config.VIEWPORT_INTERVAL_MS },
      tileUrl: (key) => signer.url(tileBase, key),
      busy: () => pressure.current > BUSY_EVENT_LOOP,
    },
    ingest: new IngestWatchers(async (jobId) => {
      const status = await ingestTracker.get(jobId);
      return status && { event: ingestEventOf(status), tenant: status.tenant };
    }),
  });
  await ingestBus.subscribe((event) => gateway.forwardIngestProgress(event));
  logger.info({ port: await listen(http, config.GATEWAY_PORT, config.HOST) }, 'gateway ready');

  return {
    async stop(deadlineMs) {
      await within(deadlineMs, gateway.close());
      pressure.stop();
      service.stop();
      await adapters.close();
    },
  };
}

runProcess('gateway', () => loadConfig(GatewayConfig, environmentWithFile(process.env)), start);
