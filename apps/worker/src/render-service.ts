import { TilefarmError, MIME_TYPES, type RenderJob, type SourceTile, type TileEvent } from '@tilefarm/contracts';
import { readSourceTile, type DatasetCatalog, type SourceBufferPool } from '@tilefarm/datasets';
import { isFinalFailure, tilesOf, type FailedTiles, type RenderClaims, type RenderJobContext, type RenderOutcome, type TileDemand, type TileSettlement } from '@tilefarm/queue';
import { regionSampling, sampleRegion, type LruByteCache, type TileRenderer } from '@tilefarm/render';
import type { ObjectStore } from '@tilefarm/storage';
import type { SpecRegistry } from '@tilefarm/tile-requests';
import type { DatasetPixels, DecodedChunk, SharedChunkStats } from '@tilefarm/zarr';
import type { Logger, WorkerMetrics } from '@tilefarm/telemetry';
import type { RenderFailureLog } from './render-failure-log';

export interface RenderServiceDeps {
  store: ObjectStore;
  catalog: Pick<DatasetCatalog, 'getVersion' | 'getStats'>;
  /** Render specs by id (jobs carry only the id; remembered per process, ids are content hashes). */
  specs: Pick<SpecRegistry, 'get'>;
  renderer: TileRenderer;
  /** Decoded source tiles, and decoded chunks of linked OME-Zarrs, in one byte budget. */
  sourceCache: LruByteCache<string, SourceTile | DecodedChunk>;
  /**
   * Memory for source tiles read from storage, reused (the cache retires a tile's buffer when it lets
   * go of it); each render holds the pool's ticket until its promise settles, so no buffer is reused
   * while a render may still read it.
   */
  sourceBuffers?: SourceBufferPool;
  /** Reads linked datasets' tiles from their Zarr (stored datasets read source tiles directly). */
  pixels: Pick<DatasetPixels, 'read'>;
  /** The decoded chunks this machine's workers hand each other (counted in the metrics), if any. */
  sharedChunks?: { stats(): SharedChunkStats };
  demand: Pick<TileDemand, 'count'>;
  /** Announces a tile's outcome and clears its demand in one step (one Redis round trip). */
  settlement: Pick<TileSettlement, 'announce'>;
  /**
   * Batch jobs' tiles (RENDER_BATCH_TILES > 1, render-claims.ts): whether the job may render a tile
   * now, and its announce that also drops the job's claim. Jobs keyed by their tile need neither.
   */
  claims?: Pick<RenderClaims, 'take'> & { announce: TileSettlement['announceClaimed'] };
  metrics: WorkerMetrics;
  logger: Pick<Logger, 'debug' | 'warn'>;
  /** Where final failures are logged: the first of each kind in full, the rest counted (render-failure-log.ts). */
  failureLog: Pick<RenderFailureLog, 'failed'>;
  renderTimeoutMs: number;
  /** Final failures that would happen again (render_timeout), remembered for failureMemoryMs so nobody pays for them twice. */
  failures: Pick<FailedTiles, 'remember'>;
  failureMemoryMs: number;
}

/** Failures that a second try would repeat: the same render stops at the same deadline. */
const REMEMBERED_FAILURES: ReadonlySet<string> = new Set(['render_timeout']);

/** Cached tiles never change: their key includes dataset version and spec hash. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Renders one job: read sources, composite, encode, store, then announce. */
export class RenderService {
  /** Jobs in any stage in this process (the renderer lets an expensive render give way while there are others). */
  inFlight = 0;

  /** The source cache's hits and misses already added to the metrics. */
  private countedCache = { hits: 0, misses: 0 };
  /** The same for the source-buffer pool's reused and fresh buffers. */
  private countedBuffers = { fromArena: 0, fresh: 0 };
  /** The same for the machine's shared chunks. */
  private countedShared: SharedChunkStats = { hits: 0, partHits: 0, misses: 0, writes: 0, failedWrites: 0, bytes: 0 };

  constructor(private readonly deps: RenderServiceDeps) {}

  handle = async (job: RenderJob, context: RenderJobContext): Promise<RenderOutcome> => {
    this.inFlight++;
    try {
      // A job keyed by its tile (the only kind before batches, and still what RENDER_BATCH_TILES=1
      // queues) or a batch job owning its tiles through claims.
      return context.jobId === undefined || context.jobId === job.key ? await this.handleOne(job, context) : await this.handleBatch(job, context.jobId, context);
    } finally {
      this.inFlight--;
    }
  };

  private handleOne = async (job: RenderJob, context: RenderJobContext): Promise<RenderOutcome> => {
    const { store, settlement, demand, metrics } = this.deps;
    metrics.queueWaitSeconds.observe(context.waitedMs / 1000);
    // Work nobody wants any more is dropped before it costs anything (the viewer moved on). At-least-once
    // delivery: a re-run of a job whose tile is already stored only re-announces it. The two checks
    // are independent, so they go out together: one wait instead of two before every render.
    const [wanted, stored] = await Promise.all([demand.count(job.key), store.head(job.key)]);
    if (wanted <= 0) {
      metrics.skippedUnwanted.inc();
      return 'skipped';
    }
    await this.renderAndAnnounce(job, stored !== undefined, context, (event) => settlement.announce(event));
    return 'rendered';
  };

  /**
   * A batch job: its tiles one after the other, each checked (still this job's, still wanted) right
   * before it is rendered and announced as soon as it is stored, not at the end of the batch. A tile
   * that fails for good is reported on its own; one that may succeed on another attempt stays
   * claimed and the job is retried once the others are done (the retry skips what was settled).
   */
  private async handleBatch(job: RenderJob, jobId: string, context: RenderJobContext): Promise<RenderOutcome> {
    const { store, metrics } = this.deps;
    const claims = this.deps.claims;
    if (!claims) throw new TilefarmError('render_failed', 'batch render job on a worker without render claims');
    metrics.queueWaitSeconds.observe(context.waitedMs / 1000);
    const { batch: _batch, ...single } = job;
    let outcome: RenderOutcome = 'skipped';
    let retry: unknown;
    const tiles = tilesOf(job);
    // A job that renders several slices of a tile place (a z stack asked at once) reads that place's
    // stacks here for each of them: shared with the machine's other workers, they were written for
    // nobody (bench:zarr, 64³ z stack: the workers' CPU per tile 2.07-2.27 ms unshared against
    // 2.42-2.70; docs/benchmarks.md, session 27).
    const slicesAt = new Map<string, number>();
    for (const t of tiles) {
      const place = placeOf(t.tile);
      slicesAt.set(place, (slicesAt.get(place) ?? 0) + 1);
    }
    for (const t of tiles) {
      const one: RenderJob = { ...single, key: t.key, tile: t.tile };
      const [take, stored] = await Promise.all([claims.take(t.key, jobId), store.head(t.key)]);
      if (take === 'other') continue;
      if (take === 'unwanted') {
        metrics.skippedUnwanted.inc();
        continue;
      }
      try {
        await this.renderAndAnnounce(one, stored !== undefined, context, (event) => claims.announce(event, jobId), slicesAt.get(placeOf(t.tile))! < 2);
        outcome = 'rendered';
      } catch (e) {
        if (e instanceof TilefarmError && isFinalFailure(e)) await this.giveUp(one, e, e, jobId);
        else retry ??= e;
      }
    }
    if (retry !== undefined) throw retry;
    return outcome;
  }

  /** Renders and stores one tile unless it is stored already, then announces it. */
  /** `shareDecodes`: ChunkReading.shareDecodes for the render's reads. */
  private async renderAndAnnounce(job: RenderJob, stored: boolean, context: RenderJobContext, announce: (event: TileEvent) => Promise<number>, shareDecodes = true): Promise<void> {
    const { store, metrics } = this.deps;
    if (!stored) {
      const started = performance.now();
      const rendered = await this.render(job, shareDecodes);
      const storeStarted = performance.now();
      await store.put(job.key, rendered.body, { contentType: rendered.contentType, cacheControl: IMMUTABLE });
      const storeMs = performance.now() - storeStarted;
      metrics.renderSeconds.observe({ stage: 'read' }, rendered.timings.readMs / 1000);
      metrics.renderSeconds.observe({ stage: 'composite' }, rendered.timings.compositeMs / 1000);
      metrics.renderSeconds.observe({ stage: 'encode' }, rendered.timings.encodeMs / 1000);
      metrics.renderSeconds.observe({ stage: 'store' }, storeMs / 1000);
      const totalMs = performance.now() - started;
      metrics.renderSeconds.observe({ stage: 'total' }, totalMs / 1000);
      metrics.renders.inc();
      // Announce, then settle the demand, in one atomic step now that the tile is stored. Honest
      // waste accounting: was anyone (viewer or HTTP request) still counted as wanting the tile
      // when its render finished?
      const wantedAtFinish = await announce({ type: 'ready', key: job.key, dataset: job.dataset, specId: job.specId, tile: job.tile, renderMs: Math.round(totalMs * 10) / 10 });
      if (wantedAtFinish <= 0) {
        metrics.wastedRenders.inc();
        this.deps.logger.debug({ key: job.key, renderMs: Math.round(totalMs), waitedMs: context.waitedMs }, 'rendered a tile nobody wanted any more');
      }
    } else {
      await announce({ type: 'ready', key: job.key, dataset: job.dataset, specId: job.specId, tile: job.tile });
    }
    const cache = this.deps.sourceCache.stats();
    // Read-ahead included: it is memory the worker holds all the same.
    metrics.sourceCacheBytes.set(cache.bytes + cache.offeredBytes);
    // From the cache's own counts: a linked Zarr's reads (its chunks, or a tile's planes of deep ones) are counted too,
    // which a count kept beside each source-tile read missed.
    metrics.sourceCacheHits.inc(cache.hits - this.countedCache.hits);
    metrics.sourceCacheMisses.inc(cache.misses - this.countedCache.misses);
    this.countedCache = { hits: cache.hits, misses: cache.misses };
    const pool = this.deps.sourceBuffers?.stats();
    if (pool) {
      metrics.sourceBuffers.inc({ result: 'reused' }, pool.fromArena - this.countedBuffers.fromArena);
      metrics.sourceBuffers.inc({ result: 'fresh' }, pool.fresh - this.countedBuffers.fresh);
      this.countedBuffers = { fromArena: pool.fromArena, fresh: pool.fresh };
    }
    const shared = this.deps.sharedChunks?.stats();
    if (shared) {
      metrics.sharedChunkReads.inc({ result: 'hit' }, shared.hits - this.countedShared.hits);
      metrics.sharedChunkReads.inc({ result: 'plane' }, shared.partHits - this.countedShared.partHits);
      metrics.sharedChunkReads.inc({ result: 'miss' }, shared.misses - this.countedShared.misses);
      metrics.sharedChunkWrites.inc({ result: 'ok' }, shared.writes - this.countedShared.writes);
      metrics.sharedChunkWrites.inc({ result: 'failed' }, shared.failedWrites - this.countedShared.failedWrites);
      this.countedShared = shared;
    }
  }

  /**
   * A job that will not be tried again: everyone waiting hears why. For a batch job (`jobId` not its
   * tile's key), every tile it still owns: the ones it announced already are not reported failed.
   */
  giveUp = async (job: RenderJob | undefined, error: TilefarmError, cause?: unknown, jobId?: string): Promise<void> => {
    this.deps.metrics.renderFailures.inc({ code: error.code });
    this.deps.failureLog.failed({ dataset: job?.dataset, key: job?.key, jobId, code: error.code, err: cause ?? error.message });
    if (!job) return;
    const claims = jobId !== undefined && jobId !== job.key ? this.deps.claims : undefined;
    const { batch: _batch, ...single } = job;
    for (const t of claims ? tilesOf(job) : [{ key: job.key, tile: job.tile }]) {
      // Remembered before it is announced: whoever asks again after hearing of it finds it.
      if (REMEMBERED_FAILURES.has(error.code)) {
        const message = `${error.message}; not tried again for ${Math.round(this.deps.failureMemoryMs / 1000)} s`;
        await this.deps.failures.remember(t.key, { code: error.code, message }, this.deps.failureMemoryMs).catch((e: unknown) => this.deps.logger.warn({ err: e, key: t.key }, 'could not remember a failed tile'));
      }
      const event: TileEvent = { type: 'failed', key: t.key, dataset: single.dataset, specId: single.specId, tile: t.tile, code: error.code, message: error.message };
      if (claims) await claims.announce(event, jobId!);
      else await this.deps.settlement.announce(event);
    }
  };

  private async render(job: RenderJob, shareDecodes: boolean) {
    const { catalog, renderer, sourceCache, store, metrics } = this.deps;
    const manifest = await catalog.getVersion(job.dataset, job.version);
    const stats = await catalog.getStats(job.dataset, job.version);
    const spec = job.spec ?? (await this.deps.specs.get(job.specId));
    const stored = (level: number, c: number, z: number, t: number, x: number, y: number): Promise<SourceTile> => {
      const cacheKey = `${job.dataset}/${job.version}/${level}/${t}/${z}/${c}/${x}/${y}`;
      // Linked: the chunks it overlaps are what the cache holds (neighbouring tiles and z slices share them).
      // Every read is part of this render, which holds the pool's ticket until it settles (below).
      if (manifest.source) return this.deps.pixels.read(manifest, { level, t, z, c, x, y }, sourceCache, this.deps.sourceBuffers, shareDecodes);
      return sourceCache.getOrLoad(cacheKey, () => readSourceTile(store, job.dataset, job.version, { level, t, z, c, x, y }, this.deps.sourceBuffers)) as Promise<SourceTile>;
    };
    const { region } = job;
    let readSource: (c: number, z: number, t: number) => Promise<SourceTile>;
    let size: { width: number; height: number } | undefined;
    let padTo: { width: number; height: number } | undefined;
    if (region) {
      // A region: sample the stored tiles it touches into one source of the output's size.
      const sampling = regionSampling(manifest, region);
      size = { width: sampling.width, height: sampling.height };
      if (region.padWidth !== undefined || region.padHeight !== undefined) padTo = { width: region.padWidth ?? region.outWidth, height: region.padHeight ?? region.outHeight };
      readSource = async (c, z, t) => {
        const tiles = await Promise.all(sampling.tiles.map((p) => stored(sampling.level, c, z, t, p.x, p.y)));
        const byPlace = new Map(sampling.tiles.map((p, i) => [`${p.x},${p.y}`, tiles[i]!]));
        return sampleRegion(sampling, manifest.tileSize, manifest.dtype, (x, y) => byPlace.get(`${x},${y}`)!);
      };
    } else {
      const { level, x, y } = job.tile;
      readSource = (c, z, t) => stored(level, c, z, t, x, y);
    }
    // The renderer stops itself at the deadline (it checks it between slices of compositing); the
    // race only covers reads that hang.
    const deadline = performance.now() + this.deps.renderTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TilefarmError('render_timeout', `render of ${job.key} took over ${this.deps.renderTimeoutMs} ms`)), this.deps.renderTimeoutMs);
    });
    const pool = this.deps.sourceBuffers;
    const ticket = pool?.enter();
    const rendering = renderer.render({ manifest, stats, spec, tile: job.tile, readSource, deadline, ...(size && { size }), ...(padTo && { padTo }) });
    // The ticket is held until the renderer itself is done (a timed-out render may still be reading).
    if (pool && ticket !== undefined) rendering.then(() => pool.leave(ticket), () => pool.leave(ticket));
    try {
      const rendered = await Promise.race([rendering, timeout]);
      if (rendered.contentType !== MIME_TYPES[job.tile.format]) throw new TilefarmError('render_failed', `encoder produced ${rendered.contentType}`);
      return rendered;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A tile's place in its dataset, whatever its z: the tiles that share a stack of planes. */
function placeOf(tile: RenderJob['tile']): string {
  return `${tile.level}/${tile.t}/${tile.x}/${tile.y}`;
}
