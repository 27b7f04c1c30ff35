import IORedis, { type RedisOptions } from 'ioredis';
import { createHash } from 'node:crypto';
import { TileEvent } from '@tilefarm/contracts';

export type RedisClient = IORedis;

/**
 * Connection settings by role, following BullMQ's production rules:
 * - `worker`/`blocking`: retry forever (`maxRetriesPerRequest: null`), a worker must survive Redis restarts;
 * - `producer`: fail fast (`enableOfflineQueue: false`, one retry) so an HTTP handler answers 503
 *   instead of hanging while Redis is down.
 */
export type RedisRole = 'producer' | 'worker' | 'subscriber';

export function redisOptions(role: RedisRole): RedisOptions {
  const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);
  switch (role) {
    case 'producer':
      return { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy, lazyConnect: false };
    case 'worker':
    case 'subscriber':
      return { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy };
  }
}

export function createRedis(url: string, role: RedisRole): RedisClient {
  const client = new IORedis(url, redisOptions(role));
  // Errors surface through commands and readiness checks; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  return client;
}

/** Resolves once a client is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * One Redis pub/sub channel of JSON messages checked against a zod schema. A malformed message
 * (from another process version) is dropped: every channel here has a way to recover from a lost
 * message, so dropping is safe.
 */
export class JsonChannel<T> {
  private readonly listeners = new Set<(message: T) => void>();
  private subscribed?: Promise<unknown>;

  constructor(
    readonly name: string,
    private readonly schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
    private readonly subscriber: RedisClient,
  ) {}

  /** Starts listening; resolves once the subscription is active. */
  async subscribe(listener: (message: T) => void): Promise<void> {
    this.listeners.add(listener);
    if (!this.subscribed) {
      this.subscriber.on('message', (channel: string, raw: string) => {
        if (channel !== this.name) return;
        let parsed;
        try {
          parsed = this.schema.safeParse(JSON.parse(raw));
        } catch {
          return;
        }
        if (!parsed.success) return;
        for (const l of this.listeners) l(parsed.data);
      });
      this.subscribed = this.subscriber.subscribe(this.name);
    }
    await this.subscribed;
  }
}

/**
 * A Lua script run by its SHA (EVALSHA), loaded into Redis on first use and again after a Redis
 * restart (NOSCRIPT): the script body is not resent with every call on the hot paths.
 */
export class RedisScript {
  private readonly sha: string;

  constructor(
    private readonly lua: string,
    private readonly keyCount: number,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: RedisClient, keysAndArgs: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, this.keyCount, ...keysAndArgs);
    } catch (e) {
      if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
      await redis.script('LOAD', this.lua);
      return redis.evalsha(this.sha, this.keyCount, ...keysAndArgs);
    }
  }
}

/**
 * Tile outcomes fan out from workers to every gateway and API process over Redis pub/sub.
 * Pub/sub is at-most-once: gateways re-check storage for pending tiles (TileDelivery's sweep),
 * so a lost message delays a tile, never loses it.
 */
export class TileEventBus {
  private readonly channel: JsonChannel<TileEvent> | undefined;
  private readonly name: string;

  constructor(
    prefix: string,
    private readonly publisher: RedisClient,
    subscriber?: RedisClient,
  ) {
    this.name = `${prefix}:tile-events`;
    this.channel = subscriber ? new JsonChannel(this.name, TileEvent, subscriber) : undefined;
  }

  async publish(event: TileEvent): Promise<void> {
    await this.publisher.publish(this.name, JSON.stringify(event));
  }

  /** Starts listening; resolves once the subscription is active (subscribe before checking storage). */
  async subscribe(listener: (event: TileEvent) => void): Promise<void> {
    if (!this.channel) throw new Error('TileEventBus was built without a subscriber connection');
    await this.channel.subscribe(listener);
  }
}

/**
 * Who still wants each tile, across all gateway and API processes: a reference count per tile
 * key in one Redis hash. Workers skip a job nobody wants any more; gateways withdraw queued jobs
 * whose count falls to zero.
 */
export class TileDemand {
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

// Decrement each field; delete it at zero or below and report it, atomically across processes.
const RELEASE = new RedisScript(`
local gone = {}
for i, field in ipairs(ARGV) do
  local n = redis.call('HINCRBY', KEYS[1], field, -1)
  if n <= 0 then
    redis.call('HDEL', KEYS[1], field)
    table.insert(gone, field)
  end
end
return gone`, 1);
