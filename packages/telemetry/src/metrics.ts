import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A Prometheus registry with process metrics; each app adds its own below. */
export function createRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export type MetricsRegistry = Registry;

export function createWorkerMetrics(registry: Registry) {
  return {
    renderSeconds: new Histogram({
      name: 'tilefarm_render_stage_seconds',
      help: 'Render duration per stage (read, composite, encode, store, total)',
      labelNames: ['stage'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    renders: new Counter({ name: 'tilefarm_renders_total', help: 'Tiles rendered and stored', registers: [registry] }),
    renderFailures: new Counter({ name: 'tilefarm_render_failures_total', help: 'Render attempts that failed', labelNames: ['code'] as const, registers: [registry] }),
    skippedUnwanted: new Counter({ name: 'tilefarm_renders_skipped_unwanted_total', help: 'Jobs dropped at start because no viewer wanted the tile any more', registers: [registry] }),
    wastedRenders: new Counter({ name: 'tilefarm_renders_unwanted_at_finish_total', help: 'Renders that finished when no viewer or request wanted the tile any more (demand count 0 at completion)', registers: [registry] }),
    queueWaitSeconds: new Histogram({ name: 'tilefarm_queue_wait_seconds', help: 'Time a render job waited in the queue', buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30], registers: [registry] }),
    sourceCacheBytes: new Gauge({ name: 'tilefarm_source_cache_bytes', help: 'Bytes of decoded source tiles and chunk windows held in memory, read-ahead included', registers: [registry] }),
    sourceCacheHits: new Counter({ name: 'tilefarm_source_cache_hits_total', help: 'Source reads served from memory: source tiles, or windows of planes of a linked Zarr\'s chunks', registers: [registry] }),
    sourceCacheMisses: new Counter({ name: 'tilefarm_source_cache_misses_total', help: 'Source reads that missed the worker\'s memory: source tiles from storage, or windows of a linked Zarr\'s chunks read and decoded (windows read back from the machine\'s shared chunks come into memory without a miss)', registers: [registry] }),
    sourceBuffers: new Counter({ name: 'tilefarm_source_buffers_total', help: 'Memory the worker took from its pool for source reads, Zarr chunk decodes and stacks: reused (cut from its arena), or fresh (the arena had no room: allocated, its pages fault in, and the collector frees it later; a large fresh share means renders hold more than the arena leaves beside the source cache)', labelNames: ['result'], registers: [registry] }),
    sharedChunkReads: new Counter({ name: 'tilefarm_shared_chunk_reads_total', help: 'A tile\'s windows of linked Zarr chunks (one channel) this worker needed: read back from another worker\'s decode (hit), one plane of another worker\'s stack read back (plane), or claimed and decoded itself (miss)', labelNames: ['result'], registers: [registry] }),
    sharedChunkWrites: new Counter({ name: 'tilefarm_shared_chunk_writes_total', help: 'Tiles\' decoded windows (one channel) this worker handed to the others of its machine (ok) or could not (failed: their directory full)', labelNames: ['result'], registers: [registry] }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

export function createGatewayMetrics(registry: Registry) {
  return {
    connectedViewers: new Gauge({ name: 'tilefarm_connected_viewers', help: 'Open viewer sockets', registers: [registry] }),
    tilesRequested: new Counter({ name: 'tilefarm_tiles_requested_total', help: 'Tiles asked for over sockets', registers: [registry] }),
    cacheHits: new Counter({ name: 'tilefarm_tile_cache_hits_total', help: 'Requested tiles already stored', registers: [registry] }),
    coalesced: new Counter({ name: 'tilefarm_coalesced_requests_total', help: 'Requests that joined a render already queued or running', registers: [registry] }),
    cancelled: new Counter({ name: 'tilefarm_cancelled_jobs_total', help: 'Queued renders withdrawn because nobody wanted them any more', registers: [registry] }),
    notifications: new Counter({ name: 'tilefarm_notifications_total', help: 'tile:ready and tile:failed events sent', labelNames: ['event'] as const, registers: [registry] }),
    queueDepth: new Gauge({ name: 'tilefarm_queue_depth', help: 'Render jobs waiting', registers: [registry] }),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export function createApiMetrics(registry: Registry) {
  return {
    httpSeconds: new Histogram({
      name: 'tilefarm_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers: [registry],
    }),
    cacheHits: new Counter({ name: 'tilefarm_tile_cache_hits_total', help: 'Tile requests served from storage', registers: [registry] }),
    enqueued: new Counter({ name: 'tilefarm_tiles_enqueued_total', help: 'Tile renders enqueued by HTTP requests', registers: [registry] }),
    queueDepth: new Gauge({ name: 'tilefarm_queue_depth', help: 'Render jobs waiting', registers: [registry] }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
