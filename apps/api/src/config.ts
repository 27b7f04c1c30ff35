import { z } from 'zod';
import { AccessEnv, IngestSourceEnv, LogEnv, RetentionEnv, PublicUrlEnv, RedisEnv, RenderCostEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

const { int } = envHelpers;

export const ApiConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    ...AccessEnv,
    ...PublicUrlEnv,
    /** Queue depth above which tile requests that need a render are refused (503 queue_full). */
    MAX_QUEUE_DEPTH: int(1, 10_000_000).default(100_000),
    ...RenderCostEnv,
    HOST: z.string().default('0.0.0.0'),
    /** How long a plain HTTP tile request waits for its render before answering 504. */
    TILE_WAIT_MS: int(0, 120_000).default(15_000),
    /** Built viewer bundle served at "/". */
    VIEWER_DIR: z.string().optional(),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
    ...IngestSourceEnv,
    /** Origins allowed to read images cross-origin: `*` or a comma list; unset = `*` unless ACCESS_TOKENS is set (then none). */
    CORS_ORIGINS: z
      .string()
      .optional()
      .refine((v) => v === undefined || v.trim() === '' || v.trim() === '*' || v.split(',').every((o) => /^https?:\/\/[^/\s]+$/.test(o.trim())), {
        message: 'must be * or a comma list of origins like https://catmaid.example.org',
      }),
    /** Largest side of a region render's output (IIIF/OMERO regions), in pixels. */
    REGION_MAX_SIDE: int(64, 16384).default(4096),
    /** Base URL browsers reach this API at (IIIF info.json ids, CATMAID mirror URLs); default http://localhost:PORT. */
    PUBLIC_URL: z.string().url().optional(),
    /** Decoded chunks of linked Zarrs kept for the /zarr/ view. */
    ZARR_CHUNK_CACHE_MB: int(0, 65536).default(32),
    /** Largest declared width × height × z × t of a linked Zarr; default 2^40. */
    ZARR_MAX_SOURCE_PIXELS: z.coerce.number().int().min(1).optional(),
    ...RetentionEnv,
    /** Largest file a browser upload may declare (POST /v1/uploads), in MiB. */
    UPLOAD_MAX_MB: int(1, 10 * 1024 * 1024).default(4096),
    /** Size of an upload's parts, in MiB (S3 multipart wants at least 5 for every part but the last). */
    UPLOAD_PART_MB: int(5, 512).default(8),
    /** An upload not completed within this many seconds is removed with its parts (a closed tab, a lost connection). */
    UPLOAD_EXPIRY_S: int(60, 30 * 24 * 3600).default(24 * 3600),
    /** Token for the queue dashboard at /admin/queues; unset = the dashboard is off (404). */
    ADMIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  })
  .superRefine(requireS3Bucket);
export type ApiConfig = z.infer<typeof ApiConfig>;
