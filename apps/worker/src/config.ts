import { z } from 'zod';
import { IngestSourceEnv, LogEnv, RetentionEnv, RedisEnv, StorageEnv, TenantQuotaEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

const { int } = envHelpers;

export const WorkerConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    /** Renders in flight; throughput peaks near 2 per core (bench:e2e with WORKER_CONCURRENCY 2 and 4, docs/capacity.md). */
    WORKER_CONCURRENCY: int(1, 64).default(2),
    /**
     * The composite's fast loops: "native" (C, built by `npm run build` where a C compiler is; 3-4x
     * faster than JavaScript on a 3-channel tile) or "javascript" (the same bytes). "native" falls
     * back to JavaScript, with a warning, when the addon was not built.
     */
    PIXEL_KERNELS: z.enum(['native', 'javascript']).default('native'),
    /** Heavy renders (over 4 M sample operations, e.g. long formulas or deep projections) in flight, beside WORKER_CONCURRENCY ordinary ones: expensive tiles never take cheap tiles' slots. */
    WORKER_HEAVY_CONCURRENCY: int(1, 64).default(1),
    /**
     * Decoded source tiles kept in memory. 64 keeps a worker under 300 MB RSS under sustained load (bench/worker-rss.ts, npm run bench:render: 96 → 270-296 MB, 128 → ~300, 256 → ~415).
     * The worker's buffers are cut from one arena of this and SOURCE_READAHEAD_MB and half as much again (at least 32 MB more; poolArenaBytesFor).
     */
    SOURCE_CACHE_MB: int(0, 65536).default(64),
    /**
     * Beside it, decoded source read ahead: the other half of a Blosc block a linked Zarr's deep
     * chunk (64³) decoded for one half, which a z scroll reads next (bench:zarr). Never pushes out
     * what was asked for; 0 keeps none.
     */
    SOURCE_READAHEAD_MB: int(0, 65536).default(32),
    /**
     * Decoded chunks of linked Zarrs that this machine's workers hand each other (files in a
     * memory-backed directory), per worker: the planes of 64³ chunks one worker decoded for a tile
     * are read back by the others instead of decoded again (bench:zarr, plane by plane;
     * bench:zarr-shared). 0 shares none.
     */
    SHARED_CHUNKS_MB: int(0, 65536).default(128),
    /** Where (a directory only this user may enter; default /dev/shm/tilefarm-chunks-{uid}): every worker of a machine must name the same. */
    SHARED_CHUNKS_DIR: z.string().min(1).optional(),
    /**
     * The worker's CPU priority (nice, 0-19, every thread). Renders and ingests are batch work: on a
     * machine shared with an API, a gateway or Redis, a higher value lets those answer first, and
     * renders wait for them. On 2 cores at 10 (docs/operations.md, "Limits"): the gateway's /healthz
     * p99 under a viewport flood 22-29 ms instead of 37-43, bench:push's first visible tile p50
     * 112-310 ms instead of 81-114. Alone on its machine a worker runs as fast at any value.
     */
    WORKER_NICE: int(0, 19).default(0),
    /** Port for /metrics and /healthz; 0 picks a free one (several workers per machine). */
    WORKER_METRICS_PORT: int(0, 65535).default(0),
    RENDER_TIMEOUT_MS: int(100, 600_000).default(30_000),
    /** How long a tile whose render timed out is answered as failed at once, by every API and gateway (seconds; 0: not remembered). */
    FAILED_TILE_MEMORY_S: int(0, 86_400).default(60),
    /** Job lock time: a killed worker's renders are taken over after about this long (stall checks run at half of it). */
    RENDER_LOCK_MS: int(1000, 600_000).default(15_000),
    /** Ingest units (file pages) in flight in this worker; 0 takes no ingest work. Units are CPU-heavy and share the process with renders. */
    INGEST_CONCURRENCY: int(0, 16).default(1),
    ...IngestSourceEnv,
    ...RetentionEnv,
    /** How often this worker looks for retired versions whose grace period is over (ms). */
    PRUNE_INTERVAL_MS: int(100, 3_600_000).default(10_000),
    ...TenantQuotaEnv,
    /** Where s3:// ingest sources are downloaded while their ingest runs (default: the OS temp dir). */
    INGEST_TEMP_DIR: z.string().min(1).optional(),
    /** Largest width × height × z × t × channels an ingest accepts (decompression bombs); default 2^37. */
    INGEST_MAX_SOURCE_PIXELS: z.coerce.number().int().min(1).optional(),
    /** Bytes an ingest unit may write per byte of the file it decodes (decompression bombs, aliased strips); default 256. */
    INGEST_MAX_WRITE_RATIO: z.coerce.number().min(1).optional(),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  })
  .superRefine(requireS3Bucket);
export type WorkerConfig = z.infer<typeof WorkerConfig>;
