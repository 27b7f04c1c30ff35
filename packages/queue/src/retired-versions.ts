import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';

export interface RetiredVersion {
  dataset: string;
  version: number;
}

/**
 * Dataset versions that are no longer current (replaced by a new ingest, or the dataset deleted),
 * each with the time its objects may go: a grace period, because tiles of the old version may
 * still be rendering or on their way to viewers. A Redis sorted set scored by that time; any
 * worker takes due entries (atomically, so one deletes each) and deletes the objects.
 */
export class RetiredVersions {
  private readonly key: string;

  constructor(
    prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.key = `${prefix}:retired-versions`;
  }

  /** Marks a version for deletion at `dueAt` (ms since the epoch). */
  async retire(dataset: string, version: number, dueAt: number): Promise<void> {
    await this.redis.zadd(this.key, dueAt, `${dataset}/${version}`);
  }

  /** Takes up to `limit` versions whose time has come; each is handed to one caller only. */
  async takeDue(now: number, limit: number): Promise<RetiredVersion[]> {
    const members = (await TAKE_DUE.run(this.redis, [this.key, now, limit])) as string[];
    return members.flatMap((m) => {
      const slash = m.lastIndexOf('/');
      const version = Number(m.slice(slash + 1));
      return slash > 0 && Number.isInteger(version) ? [{ dataset: m.slice(0, slash), version }] : [];
    });
  }

  async pending(): Promise<number> {
    return this.redis.zcard(this.key);
  }
}

const TAKE_DUE = RedisScript.fromFile('retired-versions-take-due.keys-1.lua');
