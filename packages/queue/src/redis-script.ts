import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from './redis-connection';

/** packages/queue/lua, next to both src/ (tests) and dist/ (built processes). */
const LUA_DIR = join(__dirname, '..', 'lua');

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

  /**
   * A script from packages/queue/lua, named `<name>.keys-<N>.lua` for its N keys, optionally
   * after a prelude of shared Lua functions.
   */
  static fromFile(file: string, prelude?: string): RedisScript {
    const keys = /\.keys-(\d+)\.lua$/.exec(file);
    if (!keys) throw new Error(`${file}: a script's file name must end in .keys-<count>.lua`);
    const read = (name: string) => readFileSync(join(LUA_DIR, name), 'utf8');
    return new RedisScript((prelude ? read(prelude) + '\n' : '') + read(file), Number(keys[1]));
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
