import type { TileDemandPort } from '@tilefarm/tile-requests';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';

/**
 * Who still wants each tile, across all gateway and API processes: a reference count per tile
 * key in one Redis hash. Workers skip a job nobody wants any more; gateways withdraw queued jobs
 * whose count falls to zero.
 */
export class TileDemand implements TileDemandPort {
  private readonly key: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.key = `${prefix}:tile-demand`;
  }

  async add(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const k of keys) pipeline.hincrby(this.key, k, 1);
    await pipeline.exec();
  }

  /** Drops one reference per key; returns the keys nobody wants any more. */
  async release(keys: string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    return (await RELEASE.run(this.redis, [this.key, ...keys])) as string[];
  }

  /** The tile is settled (stored or failed for good): nobody needs to count demand for it. */
  async clear(key: string): Promise<void> {
    await this.redis.hdel(this.key, key);
  }

  /** Like `clear`, and tells how many still wanted the tile at that moment (0: nobody did). */
  async settle(key: string): Promise<number> {
    const results = await this.redis.multi().hget(this.key, key).hdel(this.key, key).exec();
    const count = results?.[0]?.[1];
    return typeof count === 'string' ? Number(count) : 0;
  }

  /**
   * Makes sure the tile counts as wanted without adding a second reference for the same listener
   * (used when re-enqueueing a lost job: the listener's reference usually still stands).
   */
  async ensure(key: string): Promise<void> {
    await this.redis.hsetnx(this.key, key, 1);
  }

  async count(key: string): Promise<number> {
    const v = await this.redis.hget(this.key, key);
    return v === null ? 0 : Number(v);
  }
}

// Decrements each field, deletes it at zero or below and reports it, atomically across processes.
const RELEASE = RedisScript.fromFile('release-tile-demand.keys-1.lua');
