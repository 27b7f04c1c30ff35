import type { TileDemandPort } from '@tilefarm/tile-requests';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';

/** The demand hash's key (TileSettlement clears a settled tile's entry in its announce script). */
export function tileDemandKey(prefix: string): string {
  return `${prefix}:tile-demand`;
}

/**
 * Who still wants each tile, across all gateway and API processes: a reference count per tile
 * key in one Redis hash. Workers skip a job nobody wants any more; gateways withdraw queued jobs
 * whose count falls to zero. Workers clear a settled tile's entry (TileSettlement).
 */
export class TileDemand implements TileDemandPort {
  private readonly key: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.key = tileDemandKey(prefix);
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
