// First, before any other module loads: a SIGTERM while they load is kept for runProcess, not fatal.
import '@tilefarm/telemetry/early-signals';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { environmentWithFile, loadConfig, storageSettings, tenantQuotaBytes } from '@tilefarm/config';
import type { SourceTile, TileEvent } from '@tilefarm/contracts';
import { DatasetCatalog, SourceBufferPool, UploadStore, poolArenaBytesFor } from '@tilefarm/datasets';
import { IngestSourceFiles, parseIngestSource } from '@tilefarm/ingest';
import { DatasetPixels, SharedChunkFiles, defaultSharedChunksDir, linkZarr, reportZarrCodecsTo, zarrPlaceResolver, zarritaLibrary, type DecodedChunk } from '@tilefarm/zarr';
import { BullIngestConsumer, BullIngestQueue, BullRenderConsumer, FailedTiles, IngestTracker, RenderClaims, RetiredVersions, TenantQuotaReservations, TileDemand, TileSettlement, createRedis } from '@tilefarm/queue';
import { LruByteCache, javascriptPixelKernels, nativePixelKernels, type PixelKernels } from '@tilefarm/render';
import { configureSharp, createSharpTileRenderer } from '@tilefarm/render/encoder';
import { openObjectStore, openS3SourceFetcher } from '@tilefarm/storage';
import { SpecRegistry } from '@tilefarm/tile-requests';
import { answerNotFound, answerOpsRequest, createIngestMetrics, createWorkerMetrics, listen, runProcess, type ProcessContext, type RunningProcess } from '@tilefarm/telemetry';
import { WorkerConfig } from './config';
import { lowerCpuPriority } from './cpu-priority';
import { IngestService } from './ingest-service';
import { RenderFailureLog } from './render-failure-log';
import { RenderService } from './render-service';
import { VersionPruner } from './version-pruner';

/** Composition root of a render worker: reads config once and builds everything explicitly. */
async function start({ config, logger, registry, isStopping }: ProcessContext<WorkerConfig>): Promise<RunningProcess> {
  // First, so that every thread started from here on (sharp's, libuv's pool) inherits it.
  const priority = lowerCpuPriority(config.WORKER_NICE);
  if ('error' in priority) logger.warn({ nice: config.WORKER_NICE, err: priority.error }, 'could not lower the worker CPU priority');
  const metrics = createWorkerMetrics(registry);

  // libvips' own cache is for repeated file reads; tiles come from our byte-bounded source cache.
  configureSharp({ cache: false, concurrency: 1 });
  const store = openObjectStore(storageSettings(config));
  const catalog = new DatasetCatalog(store);
  const specs = new SpecRegistry(store);
  // An expensive render rests between its slices while other jobs of this worker are in flight.
  let jobsInFlight = () => 0;
  const kernels = pixelKernelsFor(config, logger);
  const renderer = createSharpTileRenderer({ contended: () => jobsInFlight() > 1, kernels });
  // Source tiles read from the store land in pooled memory; the cache hands it back when it lets go.
  const sourceBuffers = new SourceBufferPool({ arenaBytes: poolArenaBytesFor((config.SOURCE_CACHE_MB + config.SOURCE_READAHEAD_MB) * 1024 * 1024) });
  const sourceCache = new LruByteCache<string, SourceTile | DecodedChunk>({
    maxBytes: config.SOURCE_CACHE_MB * 1024 * 1024,
    maxOfferBytes: config.SOURCE_READAHEAD_MB * 1024 * 1024,
    dispose: (value, lastRead) => {
      if (ArrayBuffer.isView(value.data)) sourceBuffers.retire(value.data, lastRead);
    },
    readClock: () => sourceBuffers.latestTicket(),
  });
  const redis = createRedis(config.REDIS_URL, 'worker');
  const settlement = new TileSettlement(config.REDIS_PREFIX, redis);
  const demand = new TileDemand(config.REDIS_PREFIX, redis);
  // Batch jobs (gateways and API with RENDER_BATCH_TILES > 1); every worker takes both kinds of job.
  const renderClaims = new RenderClaims(config.REDIS_PREFIX, redis);
  const claims = { take: (key: string, jobId: string) => renderClaims.take(key, jobId), announce: (event: TileEvent, jobId: string) => settlement.announceClaimed(event, jobId) };
  // Linked OME-Zarrs: read where they lie (a path under INGEST_ROOT, or S3 with this config's credentials).
  const s3Connection = { region: config.S3_REGION, endpoint: config.S3_ENDPOINT, forcePathStyle: config.S3_FORCE_PATH_STYLE, accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY };
  const zarrPlaces = zarrPlaceResolver({ ingestRoot: config.INGEST_ROOT, s3: s3Connection });
  const maxPixels = config.INGEST_MAX_SOURCE_PIXELS ?? 2 ** 40;
  const quotaBytes = tenantQuotaBytes(config);
  const quotaReservations = new TenantQuotaReservations(config.REDIS_PREFIX, redis);
  const sharedChunks = openSharedChunks(config, logger);
  // Stacks of planes: a worker's reads go through z, and its kernel builds them (ChunkReading.stacks).
  const pixels = new DatasetPixels(store, zarrPlaces, maxPixels, { shared: sharedChunks, copyRows: kernels.copyRows, stacks: true });
  // Which decoders the linked Zarrs use (c-blosc, libzstd, liblz4), or which cannot load: one line at the first chunk of each.
  reportZarrCodecsTo(logger);
  const failureLog = new RenderFailureLog(logger);
  const service = new RenderService({ store, catalog, specs, renderer, sourceCache, sourceBuffers, pixels, sharedChunks, settlement, claims, demand, metrics, logger, failureLog, renderTimeoutMs: config.RENDER_TIMEOUT_MS, failures: new FailedTiles(config.REDIS_PREFIX, redis), failureMemoryMs: config.FAILED_TILE_MEMORY_S * 1000 });
  jobsInFlight = () => service.inFlight;
  const consumer = new BullRenderConsumer({
    connection: { url: config.REDIS_URL, prefix: config.REDIS_PREFIX },
    concurrency: config.WORKER_CONCURRENCY,
    lockDurationMs: config.RENDER_LOCK_MS,
    handle: service.handle,
    onGiveUp: service.giveUp,
  });
  // The heavy lane: expensive renders get their own slots, so they never hold the ordinary ones.
  const heavyConsumer = new BullRenderConsumer({
    connection: { url: config.REDIS_URL, prefix: config.REDIS_PREFIX },
    lane: 'heavy',
    concurrency: config.WORKER_HEAVY_CONCURRENCY,
    lockDurationMs: config.RENDER_LOCK_MS,
    handle: service.handle,
    onGiveUp: service.giveUp,
  });

  // Queued ingests (POST /v1/datasets): one job per unit, shared by every worker.
  // The S3 client (and the SDK) only where s3:// sources are allowed at all.
  const s3Sources =
    config.INGEST_S3_SOURCES.length > 0
      ? openS3SourceFetcher({
          region: config.S3_REGION,
          endpoint: config.S3_ENDPOINT,
          forcePathStyle: config.S3_FORCE_PATH_STYLE,
          accessKeyId: config.S3_ACCESS_KEY_ID,
          secretAccessKey: config.S3_SECRET_ACCESS_KEY,
        })
      : undefined;
  const ingestSources = new IngestSourceFiles({
    ingestRoot: config.INGEST_ROOT,
    s3Sources: config.INGEST_S3_SOURCES,
    ...(s3Sources ? { downloader: s3Sources } : {}),
    // Browser uploads: read from this store, removed when their ingest ends.
    uploads: new UploadStore(store),
    tempDir: config.INGEST_TEMP_DIR ?? join(tmpdir(), `tilefarm-ingest-${process.pid}`),
  });
  const ingestQueue = new BullIngestQueue({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX }, 'worker');
  const retired = new RetiredVersions(config.REDIS_PREFIX, redis);
  const tracker = new IngestTracker(config.REDIS_PREFIX, redis);
  const ingestService = new IngestService({
    catalog,
    tracker,
    queue: ingestQueue,
    sources: ingestSources,
    metrics: createIngestMetrics(registry),
    logger,
    maxSourcePixels: config.INGEST_MAX_SOURCE_PIXELS,
    maxWriteRatio: config.INGEST_MAX_WRITE_RATIO,
    linkZarr: (job, onProgress) => {
      const parsed = parseIngestSource(job.source, { ingestRoot: config.INGEST_ROOT, s3Sources: config.INGEST_S3_SOURCES });
      const url = parsed.kind === 's3' ? parsed.source.replace(/\/+$/, '') : `file:${relative(resolve(config.INGEST_ROOT ?? '/'), parsed.path)}`;
      return linkZarr({ url, place: zarrPlaces(url), library: zarritaLibrary, id: job.dataset, name: job.name, tenant: job.tenant, catalog, maxPixels, onProgress, copy: job.mode === 'copy', versions: tracker, tenantQuotaBytes: quotaBytes, quotaReservations });
    },
    tenantQuotaBytes: quotaBytes,
    quotaReservations,
    retired,
    graceMs: config.VERSION_GRACE_S * 1000,
  });
  const pruner = new VersionPruner({ retired, catalog, logger, intervalMs: config.PRUNE_INTERVAL_MS });
  pruner.start();
  const ingestConsumer =
    config.INGEST_CONCURRENCY > 0
      ? new BullIngestConsumer({
          connection: { url: config.REDIS_URL, prefix: config.REDIS_PREFIX },
          concurrency: config.INGEST_CONCURRENCY,
          handlers: { start: ingestService.start, unit: ingestService.unit, finish: ingestService.finish, giveUp: ingestService.giveUp },
        })
      : undefined;

  const server = createServer((req, res) => {
    if (!answerOpsRequest(req, res, registry, () => ({ ok: !isStopping() }))) answerNotFound(res);
  });
  const metricsPort = await listen(server, config.WORKER_METRICS_PORT);
  logger.info({ metricsPort, concurrency: config.WORKER_CONCURRENCY, nice: config.WORKER_NICE, storage: store.kind, pixelKernels: kernels.implementation }, 'worker ready');

  return {
    async stop(deadlineMs) {
      logger.info('finishing running renders');
      await Promise.all([consumer.close(deadlineMs), heavyConsumer.close(deadlineMs), ingestConsumer?.close(deadlineMs)]);
      failureLog.flush();
      await pruner.stop();
      await ingestQueue.close();
      await ingestSources.close();
      await s3Sources?.close();
      server.close();
      redis.disconnect();
      await store.close?.();
      sharedChunks?.close();
    },
  };
}

/** The kernels PIXEL_KERNELS names; native ones that were not built: said once, and the JavaScript ones render (the same bytes). */
function pixelKernelsFor(config: WorkerConfig, logger: ProcessContext<WorkerConfig>['logger']): PixelKernels {
  if (config.PIXEL_KERNELS === 'javascript') return javascriptPixelKernels;
  const native = nativePixelKernels();
  if (!('error' in native)) return native;
  logger.warn({ reason: native.error }, 'the native pixel kernels are not built: compositing in JavaScript, 3-4x slower (npm run build with a C compiler builds them)');
  return javascriptPixelKernels;
}

/** The machine's shared chunks, or none (SHARED_CHUNKS_MB=0, or a directory that cannot be used: said once, and rendering goes on without). */
function openSharedChunks(config: WorkerConfig, logger: ProcessContext<WorkerConfig>['logger']): SharedChunkFiles | undefined {
  if (config.SHARED_CHUNKS_MB === 0) return undefined;
  const dir = config.SHARED_CHUNKS_DIR ?? defaultSharedChunksDir();
  try {
    return SharedChunkFiles.open({ dir, maxBytes: config.SHARED_CHUNKS_MB * 1024 * 1024, namespace: config.REDIS_PREFIX });
  } catch (e) {
    logger.warn({ dir, err: e }, 'linked Zarr chunks are not shared with the other workers of this machine: their directory cannot be used');
    return undefined;
  }
}

runProcess('worker', () => loadConfig(WorkerConfig, environmentWithFile(process.env)), start);
