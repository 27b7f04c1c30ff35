import { z } from 'zod';
import { LogEnv, PublicUrlEnv, RedisEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

export const LauncherConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    ...PublicUrlEnv,
    WORKERS: envHelpers.int(1, 64).default(2),
    DEMO_DATASET: envHelpers.bool.default(true),
    // Supervision: a crashed child is restarted after RESTART_BACKOFF_MS, doubling per crash in a
    // row up to RESTART_MAX_BACKOFF_MS; CRASH_LOOP_COUNT crashes of one child within
    // CRASH_LOOP_WINDOW_MS stop everything (something is wrong that restarting will not fix).
    RESTART_BACKOFF_MS: envHelpers.int(0, 60_000).default(250),
    RESTART_MAX_BACKOFF_MS: envHelpers.int(0, 600_000).default(10_000),
    CRASH_LOOP_COUNT: envHelpers.int(1, 1000).default(10),
    CRASH_LOOP_WINDOW_MS: envHelpers.int(1000, 3_600_000).default(60_000),
  })
  .superRefine(requireS3Bucket);
