import type { FailedTilesPort, TileFailure } from '@tilefarm/tile-requests';
import type { RedisClient } from './redis-connection';

/**
 * Tiles whose render failed for good in a way that would fail again (render_timeout: the same
 * render would be stopped at the same deadline), remembered in Redis for a while so every gateway
 * and API answers a repeated request at once instead of spending another RENDER_TIMEOUT_MS of a
 * worker on it. One small string per tile with a TTL: memory is bounded by how many such failures
 * the workers can produce within the TTL (each took a whole render timeout).
 */
export class FailedTiles implements FailedTilesPort {
  private readonly prefix: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.prefix = `${prefix}:tile-failed:`;
  }

  /** The worker's side: remembers a final failure for `ttlMs` (0: not at all). */
  async remember(key: string, failure: TileFailure, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    await this.redis.set(this.prefix + key, JSON.stringify(failure), 'PX', ttlMs);
  }

  async find(keys: string[]): Promise<Array<TileFailure | undefined>> {
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys.map((k) => this.prefix + k));
    return values.map((v) => {
      if (v === null) return undefined;
      try {
        const parsed = JSON.parse(v) as Partial<TileFailure>;
        return typeof parsed.code === 'string' && typeof parsed.message === 'string' ? { code: parsed.code, message: parsed.message } : undefined;
      } catch {
        return undefined;
      }
    });
  }
}
