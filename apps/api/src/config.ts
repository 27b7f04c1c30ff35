import { z } from 'zod';
import { AccessEnv, LogEnv, RedisEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

const { int } = envHelpers;

export const ApiConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    ...AccessEnv,
    /** Queue depth above which tile requests that need a render are refused (503 queue_full). */
    MAX_QUEUE_DEPTH: int(1, 10_000_000).default(100_000),
    PORT: int(0, 65535).default(8080),
    HOST: z.string().default('0.0.0.0'),
    /** Base of the URLs announced for stored tiles: this API, or a CDN / public bucket in front of storage. */
    TILE_BASE_URL: z.string().url().optional(),
    /** How long a plain HTTP tile request waits for its render before answering 504. */
    TILE_WAIT_MS: int(0, 120_000).default(15_000),
    /** Built viewer bundle served at "/". */
    VIEWER_DIR: z.string().optional(),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
    /** Directory that POST /v1/datasets server-side sources must lie in (the workers' INGEST_ROOT); unset: only s3:// sources. */
    INGEST_ROOT: z.string().min(1).optional(),
    /** Where browsers reach the Socket.IO gateway (told to the viewer by GET /v1/config); default: this host, port 8081. */
    GATEWAY_PUBLIC_URL: z.string().url().optional(),
    /** Token for the queue dashboard at /admin/queues; unset = the dashboard is off (404). */
    ADMIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  })
  .superRefine(requireS3Bucket);
export type ApiConfig = z.infer<typeof ApiConfig>;
