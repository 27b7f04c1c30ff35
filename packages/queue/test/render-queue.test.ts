import { BullRenderConsumer, BullRenderQueue, TileDemand, TileEventBus, TileSettlement, createRedis, waitForRedis, type RenderOutcome } from '@tilefarm/queue';
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
    await queue.enqueue([{ job: job('tiles/aa/k1'), priority: 3, lane: 'render' }, { job: job('tiles/aa/k1'), priority: 3, lane: 'render' }]);
    await queue.enqueue([{ job: job('tiles/aa/k1'), priority: 1, lane: 'render' }]);
    expect(await queue.depth()).toBe(1);
    expect(await queue.state('tiles/aa/k1', 'render')).toBe('waiting');
  });

  it('tells whether a job exists with one command: queued yes; withdrawn, finished or never added no', async () => {
    await queue.enqueue([{ job: job('e-wait'), priority: 3, lane: 'render' }, { job: job('e-gone'), priority: 3, lane: 'render' }, { job: job('e-heavy'), priority: 3, lane: 'heavy' }]);
    expect(await queue.withdraw('e-gone', 'render')).toBe(true);
    expect(await queue.exists('e-wait', 'render')).toBe(true);
    expect(await queue.exists('e-heavy', 'heavy')).toBe(true);
    expect(await queue.exists('e-heavy', 'render')).toBe(false); // lanes are separate queues
    expect(await queue.exists('e-gone', 'render')).toBe(false);
    expect(await queue.exists('e-never', 'render')).toBe(false);
    // Running and, once done, removed: exists follows the job's whole life.
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const consumer = new BullRenderConsumer({
      connection: { url: REDIS_URL, prefix },
      concurrency: 1,
      handle: async (): Promise<RenderOutcome> => {
        release();
        await held;
        return 'rendered';
      },
      onGiveUp: async () => undefined,
    });
    await started;
    expect(await queue.state('e-wait', 'render')).toBe('active');
    expect(await queue.exists('e-wait', 'render')).toBe(true);
    finish();
    const deadline = Date.now() + 10_000;
    while ((await queue.exists('e-wait', 'render')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await consumer.close(5000);
    expect(await queue.exists('e-wait', 'render')).toBe(false);
    expect(await queue.state('e-wait', 'render')).toBe('unknown');
  });

  it('runs jobs by priority, and withdraws waiting ones', async () => {
    await queue.enqueue([
      { job: job('k-low'), priority: 10, lane: 'render' },
      { job: job('k-high'), priority: 1, lane: 'render' },
      { job: job('k-mid'), priority: 3, lane: 'render' },
      { job: job('k-gone'), priority: 1, lane: 'render' },
    ]);
    expect(await queue.withdraw('k-gone', 'render')).toBe(true);
    expect(await queue.reprioritize('k-low', 2, 'render')).toBe(true);
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
    expect(await queue.state('k-high', 'render')).toBe('unknown'); // removed on completion
  });

  it('never retries bad input or a timed-out render, retries transient failures, and reports the give-up once', async () => {
    await queue.enqueue([{ job: job('k-bad'), priority: 1, lane: 'render' }, { job: job('k-flaky'), priority: 1, lane: 'render' }, { job: job('k-slow'), priority: 1, lane: 'render' }, { job: job('k-costly'), priority: 1, lane: 'render' }]);
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

describe('the heavy lane (real Redis)', () => {
  it('runs heavy jobs on their own slots: ordinary jobs never wait behind them, and at most the heavy concurrency run at once', async () => {
    const prefix = uniquePrefix('lanes');
    const queue = new BullRenderQueue({ url: REDIS_URL, prefix });
    const started = Date.now();
    const doneAt: Record<string, number> = {};
    let heavyNow = 0;
    let heavyMost = 0;
    const consumer = (lane: 'render' | 'heavy') =>
      new BullRenderConsumer({
        connection: { url: REDIS_URL, prefix },
        lane,
        concurrency: 1,
        handle: async (j) => {
          if (lane === 'heavy') heavyMost = Math.max(heavyMost, ++heavyNow);
          await new Promise((r) => setTimeout(r, lane === 'heavy' ? 600 : 10));
          if (lane === 'heavy') heavyNow--;
          doneAt[j.key] = Date.now() - started;
          return 'rendered';
        },
        onGiveUp: async () => undefined,
      });
    const consumers = [consumer('render'), consumer('heavy')];
    try {
      await Promise.all(consumers.map((c) => c.waitUntilReady()));
      await queue.enqueue([
        { job: job('h1'), priority: 1, lane: 'heavy' },
        { job: job('h2'), priority: 1, lane: 'heavy' },
      ]);
      await new Promise((r) => setTimeout(r, 100)); // h1 is running
      await queue.enqueue([{ job: job('c1'), priority: 1000, lane: 'render' }]);
      expect(await queue.state('h2', 'heavy')).toBe('waiting');
      expect(await queue.state('c1', 'heavy')).toBe('unknown');
      const deadline = Date.now() + 10_000;
      while (Object.keys(doneAt).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(doneAt.c1).toBeLessThan(doneAt.h1!); // not behind the heavy job holding its slot
      expect(heavyMost).toBe(1);
      expect(await queue.depth()).toBe(0);
    } finally {
      await Promise.all(consumers.map((c) => c.close(2000)));
      await queue.close();
      await dropPrefix(prefix);
    }
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

  it('announces a settled tile and clears its demand in one step, telling how many still wanted it', async () => {
    const prefix = uniquePrefix('settle');
    const redis = createRedis(REDIS_URL, 'producer');
    await waitForRedis(redis, 5000);
    const sub = createRedis(REDIS_URL, 'subscriber');
    const demand = new TileDemand(prefix, redis);
    const settlement = new TileSettlement(prefix, redis);
    // What a gateway sees when the event arrives: the demand already cleared (one atomic step).
    const heard: Array<{ key: string; type: string; countWhenHeard: Promise<number> }> = [];
    await new TileEventBus(prefix, redis, sub).subscribe((e) => heard.push({ key: e.key, type: e.type, countWhenHeard: demand.count(e.key) }));
    await demand.add(['k', 'k', 'other']);
    const tile = { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'png' } as const;
    expect(await settlement.announce({ type: 'ready', key: 'k', dataset: 'demo', specId: 's0123456789abcdef', tile })).toBe(2);
    // Nobody wanted it (a re-run, or every viewer moved on): announced all the same, 0 wanted.
    expect(await settlement.announce({ type: 'failed', key: 'k', dataset: 'demo', specId: 's0123456789abcdef', tile, code: 'render_timeout', message: 'slow' })).toBe(0);
    const deadline = Date.now() + 5000;
    while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(heard.map((h) => [h.key, h.type])).toEqual([['k', 'ready'], ['k', 'failed']]);
    expect(await Promise.all(heard.map((h) => h.countWhenHeard))).toEqual([0, 0]);
    expect(await demand.count('other')).toBe(1);
    redis.disconnect();
    sub.disconnect();
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
