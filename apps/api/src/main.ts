// First, before any other module loads: a SIGTERM while they load is kept for runProcess, not fatal.
import '@tilefarm/telemetry/early-signals';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { environmentWithFile, loadConfig, storageSettings, tileBaseUrl } from '@tilefarm/config';
import { DatasetCatalog, UploadStore } from '@tilefarm/datasets';
import { BullIngestQueue, IngestTracker, RetiredVersions, openTileRequestAdapters } from '@tilefarm/queue';
import { queueDashboardAdapters } from '@tilefarm/queue/dashboard';
import { openObjectStore } from '@tilefarm/storage';
import { LruByteCache } from '@tilefarm/render';
import { DatasetPixels, reportZarrCodecsTo, zarrPlaceResolver } from '@tilefarm/zarr';
import { AccessTokens, SpecRegistry, TilePlanner, TileRequestService, TileUrlSigner } from '@tilefarm/tile-requests';
import { createApiMetrics, listen, runProcess, within, type ProcessContext, type RunningProcess } from '@tilefarm/telemetry';
import { buildRequestListener } from './app';
import { ApiConfig } from './config';
import { TileService } from './tile-service';
import { corsOrigins } from './cors';

/** Composition root of the HTTP API. */
async function start({ config, logger, registry, isStopping }: ProcessContext<ApiConfig>): Promise<RunningProcess> {
  const metrics = createApiMetrics(registry);
  const store = openObjectStore(storageSettings(config));
  const catalog = new DatasetCatalog(store);
  const specs = new SpecRegistry(store);
  const adapters = openTileRequestAdapters({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX }, { batchTiles: config.RENDER_BATCH_TILES });
  const { redis, queue } = adapters;
  const planner = new TilePlanner(catalog, specs, { maxRenderCost: config.MAX_RENDER_COST });
  const service = new TileRequestService({
    planner,
    ...adapters,
    store,
    maxQueueDepth: config.MAX_QUEUE_DEPTH,
    depthIntervalMs: 2000,
    onDepth: (d) => metrics.queueDepth.set(d),
    onError: (e) => logger.warn({ err: e }, 'tile sweep failed'),
  });
  const tileBase = tileBaseUrl(config);
  const signer = TileUrlSigner.parse(config.URL_SIGNING_KEYS, { ttlSeconds: config.URL_SIGNATURE_TTL_S });
  const tokens = AccessTokens.parse(config.ACCESS_TOKENS, config.ADMIN_TOKEN);
  const access = { tokens, signer, catalog };
  const tiles = new TileService({ service, metrics, tileUrl: (key) => signer.url(tileBase, key), waitMs: config.TILE_WAIT_MS });
  const ingestQueue = new BullIngestQueue({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX });
  const ingests = {
    tracker: new IngestTracker(config.REDIS_PREFIX, redis),
    queue: ingestQueue,
    catalog,
    retired: new RetiredVersions(config.REDIS_PREFIX, redis),
    graceMs: config.VERSION_GRACE_S * 1000,
    sourceRules: { ingestRoot: config.INGEST_ROOT, s3Sources: config.INGEST_S3_SOURCES },
  };
  const s3 = { region: config.S3_REGION, endpoint: config.S3_ENDPOINT, forcePathStyle: config.S3_FORCE_PATH_STYLE, accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY };
  const pixels = new DatasetPixels(store, zarrPlaceResolver({ ingestRoot: config.INGEST_ROOT, s3 }), config.ZARR_MAX_SOURCE_PIXELS ?? 2 ** 40);
  reportZarrCodecsTo(logger); // the /zarr/ view of linked Zarrs decodes their chunks here
  const zarrView = { pixels, chunks: new LruByteCache<string, unknown>({ maxBytes: config.ZARR_CHUNK_CACHE_MB * 1024 * 1024 }) };
  const uploadStore = new UploadStore(store);
  const uploads = { uploads: uploadStore, catalog, ingest: ingests, limits: { maxBytes: config.UPLOAD_MAX_MB * 2 ** 20, partBytes: config.UPLOAD_PART_MB * 2 ** 20 } };
  // Uploads nobody completed or cancelled (a closed tab) are removed once they expire.
  const expirySweep = setInterval(() => {
    void (async () => {
      for await (const id of uploadStore.abandonedBefore(Date.now() - config.UPLOAD_EXPIRY_S * 1000)) {
        if (await uploadStore.discard(id)) logger.info({ uploadId: id }, 'expired upload removed');
      }
    })().catch((e: unknown) => logger.warn({ err: e }, 'upload expiry sweep failed'));
  }, Math.min(config.UPLOAD_EXPIRY_S * 250, 10 * 60_000)).unref();
  const viewerDir = config.VIEWER_DIR ?? resolve(__dirname, '../../viewer/dist');
  const listener = buildRequestListener({ logger, registry, metrics, redis, store, catalog, specs, planner, tiles, viewerDir: existsSync(viewerDir) ? viewerDir : undefined, admin: { token: config.ADMIN_TOKEN, queues: config.ADMIN_TOKEN ? queueDashboardAdapters([queue, queue.heavyLane]) : [] }, gateway: { publicUrl: config.GATEWAY_PUBLIC_URL, port: config.GATEWAY_PORT }, ingests, uploads, access, zarrView, corsOrigins: corsOrigins(config.CORS_ORIGINS, tokens.enabled), regions: { maxSide: config.REGION_MAX_SIDE }, publicUrl: (config.PUBLIC_URL ?? `http://localhost:${config.PORT}`).replace(/\/$/, ''), isStopping });

  // The subscription is live before the first request can wait on it.
  void service.start().catch((e) => logger.error({ err: e }, 'tile event subscription failed'));
  const server = createServer(listener);
  const port = await listen(server, config.PORT, config.HOST);
  logger.info({ port, storage: store.kind, adminDashboard: config.ADMIN_TOKEN ? '/admin/queues' : 'off (no ADMIN_TOKEN)' }, 'api ready');

  return {
    async stop(deadlineMs) {
      // Readiness already answers 503 (isStopping); in-flight requests finish within the deadline.
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Keep-alive connections go idle as their last request finishes: close them as they do, so the
      // drain ends when the work does, not at the deadline.
      const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
      server.closeIdleConnections();
      await within(deadlineMs, closed);
      clearInterval(idleSweep);
      clearInterval(expirySweep);
      service.stop();
      await adapters.close();
      await ingestQueue.close();
      await store.close?.();
    },
  };
}

runProcess('api', () => loadConfig(ApiConfig, environmentWithFile(process.env)), start);
