import { z } from 'zod';
import { AccessEnv, IngestSourceEnv, LogEnv, PublicUrlEnv, RedisEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

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
    HOST: z.string().default('0.0.0.0'),
    /** How long a plain HTTP tile request waits for its render before answering 504. */
    TILE_WAIT_MS: int(0, 120_000).default(15_000),
    /** Built viewer bundle served at "/". */
    VIEWER_DIR: z.string().optional(),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
    ...IngestSourceEnv,
    /** Token for the queue dashboard at /admin/queues; unset = the dashboard is off (404). */
    ADMIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16, 'must be at least 16 characters').optional()),
  })
  .superRefine(requireS3Bucket);
export type ApiConfig = z.infer<typeof ApiConfig>;
