import { BullRenderConsumer, BullRenderQueue, TileDemand, TileEventBus, createRedis, waitForRedis, type RenderOutcome } from '@tilefarm/queue';
import { TilefarmError, type RenderJob, type TileEvent } from '@tilefarm/contracts';
import { REDIS_URL, dropPrefix, uniquePrefix } from '../../../test/support/redis';

function job(key: string): RenderJob {
  return {
    v: 1,
    key,
    dataset: 'demo',
    version: 1,
    specId: 's0123456789abcdef',
    spec: { v: 1, channels: [{ index: 0, gamma: 1, invert: false, active: true }], composite: 'add', format: 'jpeg', quality: 85 },
    tile: { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'jpeg' },
  };
}

describe('BullRenderQueue and BullRenderConsumer (real Redis)', () => {
  let prefix: string;
  let queue: BullRenderQueue;
  beforeEach(() => {
    prefix = uniquePrefix('queue');
    queue = new BullRenderQueue({ url: REDIS_URL, prefix });
  });
  afterEach(async () => {
    await queue.close();
    await dropPrefix(prefix);
  });

  it('coalesces identical keys into one job', async () => {
    await queue.enqueue([{ job: job('tiles/aa/k1'), priority: 3 }, { job: job('tiles/aa/k1'), priority: 3 }]);
    await queue.enqueue([{ job: job('tiles/aa/k1'), priority: 1 }]);
    expect(await queue.depth()).toBe(1);
    expect(await queue.state('tiles/aa/k1')).toBe('waiting');
  });

  it('runs jobs by priority, and withdraws waiting ones', async () => {
    await queue.enqueue([
      { job: job('k-low'), priority: 10 },
      { job: job('k-high'), priority: 1 },
      { job: job('k-mid'), priority: 3 },
      { job: job('k-gone'), priority: 1 },
    ]);
    expect(await queue.withdraw('k-gone')).toBe(true);
    expect(await queue.reprioritize('k-low', 2)).toBe(true);
    const order: string[] = [];
    const consumer = new BullRenderConsumer({
      connection: { url: REDIS_URL, prefix },
      concurrency: 1,
      handle: async (j): Promise<RenderOutcome> => {
        order.push(j.key);
        return 'rendered';
      },
      onGiveUp: async () => undefined,
    });
    const deadline = Date.now() + 10_000;
    while (order.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await consumer.close(5000);
    expect(order).toEqual(['k-high', 'k-low', 'k-mid']);
    expect(await queue.state('k-high')).toBe('unknown'); // removed on completion
  });

  it('never retries bad input or a timed-out render, retries transient failures, and reports the give-up once', async () => {
    await queue.enqueue([{ job: job('k-bad'), priority: 1 }, { job: job('k-flaky'), priority: 1 }, { job: job('k-slow'), priority: 1 }, { job: job('k-costly'), priority: 1 }]);
    const attempts: Record<string, number> = {};
    const gaveUp: string[] = [];
    const consumer = new BullRenderConsumer({
      connection: { url: REDIS_URL, prefix },
      concurrency: 2,
      handle: async (j, ctx) => {
        attempts[j.key] = ctx.attempt;
        if (j.key === 'k-bad') throw new TilefarmError('invalid_spec', 'channels.0.index: 9 but the dataset has 3 channels');
        if (j.key === 'k-slow') throw new TilefarmError('render_timeout', 'stopped at its deadline');
        if (j.key === 'k-costly') throw new TilefarmError('spec_too_expensive', 'over MAX_RENDER_COST');
        if (ctx.attempt < 3) throw new Error('storage hiccup');
        return 'rendered';
      },
      onGiveUp: async (j, e) => {
        gaveUp.push(`${j?.key}:${e.code}`);
      },
    });
    const deadline = Date.now() + 15_000;
    while ((attempts['k-flaky'] ?? 0) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    await consumer.close(5000);
    expect(attempts).toEqual({ 'k-bad': 1, 'k-flaky': 3, 'k-slow': 1, 'k-costly': 1 });
    expect(gaveUp.sort()).toEqual(['k-bad:invalid_spec', 'k-costly:spec_too_expensive', 'k-slow:render_timeout']);
  });
});

describe('TileDemand and TileEventBus', () => {
  it('counts demand across callers and reports keys nobody wants', async () => {
    const prefix = uniquePrefix('demand');
    const redis = createRedis(REDIS_URL, 'producer');
    await waitForRedis(redis, 5000); // producers fail fast: no offline queue
    const demand = new TileDemand(prefix, redis);
    await demand.add(['a', 'b']);
    await demand.add(['a']);
    expect(await demand.release(['a', 'b'])).toEqual(['b']);
    expect(await demand.count('a')).toBe(1);
    expect(await demand.release(['a'])).toEqual(['a']);
    expect(await demand.count('a')).toBe(0);
    redis.disconnect();
    await dropPrefix(prefix);
  });

  it('delivers published events to every subscriber and drops malformed ones', async () => {
    const prefix = uniquePrefix('bus');
    const pub = createRedis(REDIS_URL, 'producer');
    await waitForRedis(pub, 5000);
    const subs = [createRedis(REDIS_URL, 'subscriber'), createRedis(REDIS_URL, 'subscriber')];
    const got: TileEvent[][] = [[], []];
    const buses = subs.map((s) => new TileEventBus(prefix, pub, s));
    await Promise.all(buses.map((b, i) => b.subscribe((e) => got[i]!.push(e))));
    await pub.publish(`${prefix}:tile-events`, '{"garbage":true');
    await buses[0]!.publish({ type: 'ready', key: 'k', dataset: 'demo', specId: 's0123456789abcdef', tile: { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'png' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(got.map((g) => g.map((e) => e.key))).toEqual([['k'], ['k']]);
    pub.disconnect();
    subs.forEach((s) => s.disconnect());
  });
});
