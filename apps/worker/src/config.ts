import { z } from 'zod';
import { LogEnv, RedisEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

const { int } = envHelpers;

export const WorkerConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    /** Renders in flight; throughput peaks near 2 per core (field notes). */
    WORKER_CONCURRENCY: int(1, 64).default(4),
    SOURCE_CACHE_MB: int(0, 65536).default(256),
    /** Port for /metrics and /healthz; 0 picks a free one (several workers per machine). */
    WORKER_METRICS_PORT: int(0, 65535).default(0),
    RENDER_TIMEOUT_MS: int(100, 600_000).default(30_000),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  })
  .superRefine(requireS3Bucket);
export type WorkerConfig = z.infer<typeof WorkerConfig>;
