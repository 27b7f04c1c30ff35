import { z } from 'zod';
import { MAX_TILES_PER_REQUEST } from '@tilefarm/contracts';
import { AccessEnv, LogEnv, PublicUrlEnv, RedisEnv, RenderCostEnv, StorageEnv, envHelpers, requireS3Bucket } from '@tilefarm/config';

const { int } = envHelpers;

export const GatewayConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    ...AccessEnv,
    ...PublicUrlEnv,
    HOST: z.string().default('0.0.0.0'),
    /** Comma-separated allowed browser origins for the socket ("*" = any). */
    ALLOWED_ORIGINS: z.string().default('*'),
    /** Z slices prefetched on each side of the viewed one. */
    PREFETCH_Z: int(0, 64).default(2),
    /** Time points prefetched ahead of the viewed one (playback's next frames). */
    PREFETCH_T: int(0, 64).default(2),
    /**
     * The most tiles a viewport rectangle may cover: what a screen can show (an 8K screen at the
     * level the viewer picks shows about 600 tiles of 256²); a larger rectangle is cut around its
     * centre. Default: the most tiles one tiles:request may name.
     */
    VIEWPORT_MAX_TILES: int(1, MAX_TILES_PER_REQUEST * 16).default(MAX_TILES_PER_REQUEST),
    /**
     * Viewports are applied at most this often per viewer, the latest one then (the web viewer
     * sends one at most every 100 ms); 0: each one as it comes.
     */
    VIEWPORT_INTERVAL_MS: int(0, 10_000).default(100),
    /** Tiles one viewer may have pending at once. */
    MAX_PENDING_PER_VIEWER: int(1, 100_000).default(2000),
    /** Queue depth above which new renders are refused (load shedding). */
    MAX_QUEUE_DEPTH: int(1, 10_000_000).default(100_000),
    ...RenderCostEnv,
    /** Queue depth above which viewers are told their tiles are queued. */
    QUEUED_NOTICE_DEPTH: int(0, 10_000_000).default(500),
    /** Socket events per second per viewer (burst = 2 s worth). */
    EVENTS_PER_SECOND: int(1, 100_000).default(100),
    MAX_EVENT_BYTES: int(1024, 10_000_000).default(256 * 1024),
    SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  })
  .superRefine(requireS3Bucket);
export type GatewayConfig = z.infer<typeof GatewayConfig>;
