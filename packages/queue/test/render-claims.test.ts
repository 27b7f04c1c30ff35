import { BullRenderConsumer, BullRenderQueue, RenderClaims, TileDemand, TileSettlement, createRedis, renderClaimsKey, waitForRedis, type RenderOutcome } from '@tilefarm/queue';
import type { RenderJob } from '@tilefarm/contracts';
import { REDIS_URL, dropPrefix, uniquePrefix } from '../../../test/support/redis';

// Batch jobs on real Redis (RENDER_BATCH_TILES > 1): tiles owned through render claims, coalesced
// across enqueues, withdrawn one by one, checked and settled by the worker's scripts.

const tile = (x: number) => ({ level: 0, z: 0, t: 0, x, y: 0, format: 'jpeg' as const });
const keyAt = (x: number) => `tiles/aa/demo/v1/s0123456789abcdef/l0-z0-t0-x${x}-y0.jpeg`;
function batch(xs: number[]): RenderJob {
  const [first, ...rest] = xs as [number, ...number[]];
  return { v: 1, key: keyAt(first), dataset: 'demo', version: 1, specId: 's0123456789abcdef', tile: tile(first), ...(rest.length > 0 && { batch: rest.map((x) => ({ key: keyAt(x), tile: tile(x) })) }) };
}

describe('BullRenderQueue with batch jobs (real Redis)', () => {
  let prefix: string;
  let queue: BullRenderQueue;
  const redis = createRedis(REDIS_URL, 'producer');
  beforeAll(() => waitForRedis(redis, 5000));
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    prefix = uniquePrefix('claims');
    queue = new BullRenderQueue({ url: REDIS_URL, prefix }, { batchTiles: 4, pruneClaimsAbove: 0 });
  });
  afterEach(async () => {
    await queue.close();
    await dropPrefix(prefix);
  });

  it('queues a batch as one job; an overlapping batch gets only the tiles nobody holds; depth counts tiles', async () => {
    await queue.enqueue([{ job: batch([0, 1, 2, 3]), priority: 1000, lane: 'render' }]);
    await queue.enqueue([{ job: batch([2, 3, 4, 5]), priority: 1004, lane: 'render' }, { job: batch([0, 1]), priority: 1000, lane: 'render' }]);
    expect(await queue.depth()).toBe(6);
    expect((await queue.counts()).prioritized).toBe(2);
    const owners = await redis.hgetall(renderClaimsKey(prefix));
    expect(new Set([0, 1, 2, 3].map((x) => owners[keyAt(x)])).size).toBe(1);
    expect(new Set([4, 5].map((x) => owners[keyAt(x)])).size).toBe(1);
    expect(owners[keyAt(4)]).not.toBe(owners[keyAt(0)]);
    for (const x of [0, 5]) expect(await queue.exists(keyAt(x), 'render')).toBe(true);
    expect(await queue.exists(keyAt(6), 'render')).toBe(false);
    expect(await queue.state(keyAt(1), 'render')).toBe('waiting');
  });

  it('enqueueWanted counts each tile\'s demand with its claim, before the lookup answers; adds the jobs after it without the skipped tiles', async () => {
    const demand = new TileDemand(prefix, redis);
    await queue.enqueue([{ job: batch([3]), priority: 1000, lane: 'render' }]); // tile 3 has a live job already
    let answer: (skip: ReadonlySet<string>) => void = () => undefined;
    const skipped = new Promise<ReadonlySet<string>>((r) => (answer = r));
    const done = queue.enqueueWanted([{ job: batch([0, 1]), priority: 1000, lane: 'render' }, { job: batch([2, 3]), priority: 1001, lane: 'render' }], skipped);
    // Claimed and counted while the lookup is out; no job added yet.
    for (let i = 0; i < 100 && (await redis.hlen(renderClaimsKey(prefix))) < 4; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await Promise.all([0, 1, 2, 3].map((x) => demand.count(keyAt(x))))).toEqual([1, 1, 1, 1]);
    expect((await queue.counts()).prioritized).toBe(1);
    answer(new Set([keyAt(1)]));
    await done;
    const owners = await redis.hgetall(renderClaimsKey(prefix));
    expect(owners[keyAt(1)]).toBeUndefined(); // the skipped tile's claim is dropped, its job never held it
    expect(new Set([0, 2, 3].map((x) => owners[keyAt(x)])).size).toBe(3); // 3 stays with the job it had
    expect((await queue.counts()).prioritized).toBe(3);
    for (const x of [0, 2, 3]) expect(await queue.exists(keyAt(x), 'render')).toBe(true);
    expect(await queue.exists(keyAt(1), 'render')).toBe(false);
    // The demand of a skipped tile is the caller's to release (TileDemand.release), as for any other.
    expect(await demand.count(keyAt(1))).toBe(1);
  });

  it('enqueueWanted drops its claims and adds nothing when the lookup fails', async () => {
    const failing = Promise.reject(new Error('lookup lost'));
    await expect(queue.enqueueWanted([{ job: batch([0, 1]), priority: 1000, lane: 'render' }], failing)).rejects.toThrow('lookup lost');
    expect(await redis.hlen(renderClaimsKey(prefix))).toBe(0);
    expect((await queue.counts()).prioritized).toBe(0);
  });

  it('withdraws tile by tile: the job stays while it holds a tile, goes with its last; a lost job is taken over', async () => {
    await queue.enqueue([{ job: batch([0, 1]), priority: 1000, lane: 'render' }]);
    expect(await queue.withdraw(keyAt(0), 'render')).toBe(true);
    expect(await queue.exists(keyAt(0), 'render')).toBe(false);
    expect(await queue.exists(keyAt(1), 'render')).toBe(true);
    expect((await queue.counts()).prioritized).toBe(1);
    expect(await queue.withdraw(keyAt(1), 'render')).toBe(true);
    expect((await queue.counts()).prioritized).toBe(0);
    // A claim whose job is gone and older than the grace period: the next enqueue takes it over.
    await redis.hset(renderClaimsKey(prefix), keyAt(7), `b99-${Date.now() - 60_000}`);
    expect(await queue.exists(keyAt(7), 'render')).toBe(false);
    await queue.enqueue([{ job: batch([7]), priority: 1000, lane: 'render' }]);
    expect(await queue.exists(keyAt(7), 'render')).toBe(true);
    // Such claims are dropped as the depth is read, so they are not counted for long.
    await redis.hset(renderClaimsKey(prefix), keyAt(8), `b98-${Date.now() - 60_000}`, keyAt(9), `b97-${Date.now()}`);
    await queue.depth();
    expect(await queue.depth()).toBe(2);
    expect(Object.keys(await redis.hgetall(renderClaimsKey(prefix))).sort()).toEqual([keyAt(7), keyAt(9)]);
  });

  it('a worker renders each tile it owns and still wanted, announcing each; a running batch keeps its tiles, the unwanted one is skipped', async () => {
    const worker = createRedis(REDIS_URL, 'worker');
    const demand = new TileDemand(prefix, redis);
    const claims = new RenderClaims(prefix, worker);
    const settlement = new TileSettlement(prefix, worker);
    const seen: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const consumer = new BullRenderConsumer({
      connection: { url: REDIS_URL, prefix },
      concurrency: 1,
      handle: async (j, ctx): Promise<RenderOutcome> => {
        for (const t of [{ key: j.key, tile: j.tile }, ...(j.batch ?? [])]) {
          const take = await claims.take(t.key, ctx.jobId!);
          seen.push(`${take} ${t.tile.x}`);
          if (t.tile.x === 0) {
            started();
            await held;
          }
          if (take === 'render') await settlement.announceClaimed({ type: 'ready', key: t.key, dataset: 'demo', specId: 's0123456789abcdef', tile: t.tile }, ctx.jobId!);
        }
        return 'rendered';
      },
      onGiveUp: async () => undefined,
    });
    try {
      await demand.add([0, 1, 2].map(keyAt));
      await queue.enqueue([{ job: batch([0, 1, 2]), priority: 1000, lane: 'render' }]);
      await running;
      // Running: tile 2 is not withdrawn, but nobody wants it any more, so the worker skips it.
      expect(await demand.release([keyAt(2)])).toEqual([keyAt(2)]);
      expect(await queue.withdraw(keyAt(2), 'render')).toBe(false);
      release();
      const deadline = Date.now() + 10_000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual(['render 0', 'render 1', 'unwanted 2']);
      expect(await redis.hlen(renderClaimsKey(prefix))).toBe(0);
      expect(await demand.count(keyAt(0))).toBe(0);
    } finally {
      await consumer.close(2000);
      worker.disconnect();
    }
  });
});
