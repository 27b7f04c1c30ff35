import { TilefarmError } from '@tilefarm/contracts';
import { TIER, jobPriority, type PlannedTile, type TilePlan } from '@tilefarm/tile-requests';
import { DATASET, WHOLE_SLIDE, buildCore, recorder, type Core } from './support/fakes';

// The tile-request core on in-memory fakes of its ports: every rule without a process or Redis.

const at = (x: number, y: number, z = 0, level = 0) => ({ level, z, t: 0, x, y });

async function plan(core: Core, positions: Array<ReturnType<typeof at>>): Promise<TilePlan> {
  return core.service.planner.plan(DATASET.id, core.specId, positions);
}

describe('TileRequestService', () => {
  let core: Core;
  beforeEach(async () => {
    core = await buildCore();
  });
  afterEach(() => core.service.stop());

  it('answers stored tiles at once and enqueues the rest, one job per tile', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0)]);
    await core.store.put(p.tiles[0]!.key, Buffer.from('x'));
    const a = recorder();
    const result = await core.service.request(p, p.tiles, TIER.visible, a.listener);
    expect(result.ready.map((t) => t.key)).toEqual([p.tiles[0]!.key]);
    expect(result.pending.map((t) => t.key)).toEqual([p.tiles[1]!.key]);
    expect(core.queue.added).toEqual([p.tiles[1]!.key]);
    expect(core.demand.counts.get(p.tiles[1]!.key)).toBe(1);
    await core.render(p.tiles[1]!.key);
    expect(a.heard.map((e) => [e.type, e.key])).toEqual([['ready', p.tiles[1]!.key]]);
    expect(core.service.pendingCount).toBe(0);
  });

  it('coalesces: listeners asking for the same tile share one job and each hears of it once', async () => {
    const p = await plan(core, [at(0, 0)]);
    const [a, b] = [recorder(), recorder()];
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    const second = await core.service.request(p, p.tiles, TIER.visible, b.listener);
    const again = await core.service.request(p, p.tiles, TIER.visible, a.listener);
    expect(second.coalesced).toBe(1);
    expect(again.coalesced).toBe(0); // the same listener asking twice is not a second viewer
    expect(core.queue.added).toHaveLength(1);
    expect(core.demand.counts.get(p.tiles[0]!.key)).toBe(3);
    await core.render(p.tiles[0]!.key);
    expect(a.heard).toHaveLength(1);
    expect(b.heard).toHaveLength(1);
  });

  it('orders jobs by tier, then round-robin across listeners within a tier', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0), at(2, 0), at(0, 1)]);
    const [a, b] = [recorder(), recorder()];
    const tiles = p.tiles;
    await core.service.request(p, [tiles[0]!, tiles[1]!], TIER.ring, a.listener);
    await core.service.request(p, [tiles[2]!, tiles[3]!], TIER.ring, b.listener);
    // a0, b0 (ordinal 0) before a1, b1 (ordinal 1), though a asked first for both.
    expect(core.queue.order()).toEqual([tiles[0]!.key, tiles[2]!.key, tiles[1]!.key, tiles[3]!.key]);
    expect(core.queue.priorityOf(tiles[0]!.key)).toBe(jobPriority(TIER.ring, 0));
    // A tile becoming visible for one listener moves its job ahead of every ring tile.
    await core.service.setTier([tiles[3]!.key], TIER.visible, b.listener);
    expect(core.queue.order()[0]).toBe(tiles[3]!.key);
    // Another listener wanting the same tile less does not move it back: the best tier wins.
    const c = recorder();
    await core.service.request(p, [tiles[3]!], TIER.outsideView, c.listener);
    expect(core.queue.priorityOf(tiles[3]!.key)).toBe(jobPriority(TIER.visible, 1));
  });

  describe('re-ranking after a delay', () => {
    let delayed: Core;
    beforeEach(async () => {
      delayed = await buildCore({ rerankDelayMs: 40 }, { batchTiles: 4 });
    });
    afterEach(() => delayed.service.stop());

    it('a viewer flipping a tile between tiers and back costs no queue call; a lasting change costs one per job', async () => {
      // 16 tiles of one screen: four jobs of four tiles.
      const p = await delayed.service.planner.plan(WHOLE_SLIDE.id, delayed.specId, Array.from({ length: 16 }, (_, i) => at(i % 4, Math.floor(i / 4))));
      const a = recorder();
      await delayed.service.request(p, p.tiles, TIER.ring, a.listener);
      const keys = p.tiles.map((t) => t.key);
      const before = keys.map((k) => delayed.queue.priorityOf(k));
      for (let i = 0; i < 5; i++) {
        await delayed.service.setTier(keys, TIER.visible, a.listener);
        await delayed.service.setTier(keys, TIER.ring, a.listener);
      }
      await delayed.service.flushRanks();
      expect(delayed.queue.reranked).toEqual([]);
      expect(keys.map((k) => delayed.queue.priorityOf(k))).toEqual(before);
      // Visible for good: applied once the delay is over, one call per job.
      expect(delayed.queue.batches).toHaveLength(4);
      await delayed.service.setTier(keys, TIER.visible, a.listener);
      expect(delayed.queue.reranked).toEqual([]);
      await new Promise((r) => setTimeout(r, 80));
      expect(delayed.queue.reranked).toHaveLength(4);
      expect(delayed.queue.batches.map((b) => delayed.queue.priorityOf(b[0]!))).toEqual([0, 4, 8, 12].map((i) => jobPriority(TIER.visible, i)));
    });

    it('a tile settled or released before the delay is over is not re-ranked', async () => {
      const p = await delayed.service.planner.plan(DATASET.id, delayed.specId, [at(0, 0)]);
      const a = recorder();
      await delayed.service.request(p, p.tiles, TIER.ring, a.listener);
      await delayed.service.setTier([p.tiles[0]!.key], TIER.visible, a.listener);
      await delayed.service.release([p.tiles[0]!.key], a.listener);
      await delayed.service.flushRanks();
      expect(delayed.queue.reranked).toEqual([]);
    });
  });

  it('withdraws a queued render once nobody wants it, not while someone still does', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0)]);
    const [a, b] = [recorder(), recorder()];
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    await core.service.request(p, [p.tiles[0]!], TIER.visible, b.listener);
    expect(await core.service.release(p.tiles.map((t) => t.key), a.listener)).toBe(1);
    expect(core.queue.withdrawn).toEqual([p.tiles[1]!.key]);
    expect(await core.queue.state(p.tiles[0]!.key)).toBe('waiting');
    await core.render(p.tiles[0]!.key);
    expect(a.heard).toHaveLength(0); // released tiles are not announced to the listener any more
    expect(b.heard).toHaveLength(1);
  });

  it('does not withdraw a running render, and puts a job back when another process joined during the withdraw', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0)]);
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    core.queue.jobs.get(p.tiles[0]!.key)!.state = 'active';
    // Another process (same demand counts, its own pending map) joins tile 1 between our release and our withdraw.
    const release = core.demand.release.bind(core.demand);
    core.demand.release = async (keys) => {
      const gone = await release(keys);
      await core.demand.add([p.tiles[1]!.key]);
      return gone;
    };
    expect(await core.service.release(p.tiles.map((t) => t.key), a.listener)).toBe(0);
    expect(await core.queue.state(p.tiles[0]!.key)).toBe('active');
    expect(await core.queue.state(p.tiles[1]!.key)).toBe('waiting');
    expect(core.queue.added.filter((k) => k === p.tiles[1]!.key)).toHaveLength(2);
  });

  it('sheds load: over the queue budget, stored tiles are still answered and nothing new is enqueued', async () => {
    const shedding = await buildCore({ maxQueueDepth: 5 });
    try {
      const p = await plan(shedding, [at(0, 0), at(1, 0)]);
      await shedding.store.put(p.tiles[0]!.key, Buffer.from('x'));
      shedding.queue.depthOverride = 5;
      await shedding.service.readDepth();
      expect(shedding.service.load()).toEqual({ depth: 5, shedding: true });
      const result = await shedding.service.request(p, p.tiles, TIER.visible, recorder().listener);
      expect(result.ready.map((t) => t.key)).toEqual([p.tiles[0]!.key]);
      expect(result.refused.map((t) => t.key)).toEqual([p.tiles[1]!.key]);
      expect(shedding.queue.added).toEqual([]);
      expect(shedding.demand.counts.size).toBe(0);
      expect(shedding.service.pendingCount).toBe(0);
      await expect(shedding.service.httpTile(DATASET.id, shedding.specId, at(1, 0), { wait: true, waitMs: 1000 })).rejects.toMatchObject({ code: 'queue_full' });
      shedding.queue.depthOverride = 4;
      await shedding.service.readDepth();
      expect((await shedding.service.request(p, p.tiles, TIER.visible, recorder().listener)).pending).toHaveLength(1);
    } finally {
      shedding.service.stop();
    }
  });

  it('never misses a tile finished while it looks in storage (settle before the storage check answers)', async () => {
    const p = await plan(core, [at(0, 0)]);
    const tile: PlannedTile = p.tiles[0]!;
    // Someone else's render of this tile is queued already.
    await core.queue.enqueue([{ job: { v: 1, key: tile.key, dataset: p.manifest.id, version: p.manifest.version, specId: p.specId, spec: p.spec, tile: tile.tile }, priority: 1, lane: 'render' }]);
    const open = core.store.holdTileReads();
    const a = recorder();
    const asked = core.service.request(p, [tile], TIER.visible, a.listener);
    await core.render(tile.key); // stored and announced while our head() is in flight
    open();
    const result = await asked;
    // Found in storage, and also announced: the caller delivers whichever comes first, once.
    expect(result.ready.map((t) => t.key)).toEqual([tile.key]);
    expect(a.heard.map((e) => e.key)).toEqual([tile.key]);
  });

  it('the sweep announces a tile whose event was lost, and re-enqueues a job that vanished', async () => {
    const swept = await buildCore({ sweepAfterMs: 0 });
    try {
      const p = await plan(swept, [at(0, 0), at(1, 0)]);
      const a = recorder();
      await swept.service.request(p, p.tiles, TIER.visible, a.listener);
      // Tile 0: rendered and stored, but its event never arrived. Tile 1: its job was lost.
      swept.queue.jobs.clear();
      await swept.store.put(p.tiles[0]!.key, Buffer.from('x'));
      await swept.service.sweep();
      expect(a.heard.map((e) => e.key)).toEqual([p.tiles[0]!.key]);
      expect(await swept.queue.state(p.tiles[1]!.key)).toBe('waiting');
      expect(swept.demand.counts.get(p.tiles[1]!.key)).toBe(1);
    } finally {
      swept.service.stop();
    }
  });

  it('answers a tile that failed for good recently (remembered) with its failure at once: no job, no demand', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0)]);
    await core.failures.remember(p.tiles[0]!.key, { code: 'render_timeout', message: 'stopped at its deadline' }, 60_000);
    const a = recorder();
    const result = await core.service.request(p, p.tiles, TIER.visible, a.listener);
    // Still pending for the caller (it hears of every tile once), but only the other one is queued.
    expect(result.pending.map((t) => t.key)).toEqual(p.tiles.map((t) => t.key));
    expect(core.queue.added).toEqual([p.tiles[1]!.key]);
    expect(core.demand.counts.has(p.tiles[0]!.key)).toBe(false);
    expect(a.heard).toEqual([]); // after the answer, not before it
    await new Promise((r) => setImmediate(r));
    expect(a.heard).toEqual([expect.objectContaining({ type: 'failed', key: p.tiles[0]!.key, code: 'render_timeout', message: 'stopped at its deadline' })]);
    expect(core.service.pendingCount).toBe(1);
  });

  it('counts demand while it looks up remembered failures (one round trip before the enqueue), and takes a failed tile\'s back', async () => {
    const p = await plan(core, [at(0, 0), at(1, 0)]);
    await core.failures.remember(p.tiles[0]!.key, { code: 'render_timeout', message: 'stopped at its deadline' }, 60_000);
    let answer: () => void = () => undefined;
    const held = new Promise<void>((r) => (answer = r));
    const find = core.failures.find.bind(core.failures);
    core.failures.find = async (keys) => (await held, find(keys));
    const request = core.service.request(p, p.tiles, TIER.visible, recorder().listener);
    await new Promise((r) => setImmediate(r));
    // The lookup has not answered, and both tiles' demand is counted already.
    expect(p.tiles.map((t) => core.demand.counts.get(t.key))).toEqual([1, 1]);
    expect(core.queue.added).toEqual([]);
    answer();
    await request;
    expect(core.demand.counts.has(p.tiles[0]!.key)).toBe(false);
    expect(core.demand.counts.get(p.tiles[1]!.key)).toBe(1);
    expect(core.queue.added).toEqual([p.tiles[1]!.key]);
  });

  describe('with batch jobs (render claims)', () => {
    let claimed: Core;
    beforeEach(async () => {
      claimed = await buildCore({}, { batchTiles: 4 });
    });
    afterEach(() => claimed.service.stop());

    /** Holds the failure lookup until `answer()`; counts the service's own demand.add calls. */
    function holdLookup(c: Core): { answer: () => void; demandAdds: string[][] } {
      let answer: () => void = () => undefined;
      const held = new Promise<void>((r) => (answer = r));
      const find = c.failures.find.bind(c.failures);
      c.failures.find = async (keys) => (await held, find(keys));
      const demandAdds: string[][] = [];
      const add = c.demand.add.bind(c.demand);
      c.demand.add = async (keys) => (keys.length > 0 && demandAdds.push(keys), add(keys));
      return { answer: () => answer(), demandAdds };
    }

    it('claims a cold screen counting its demand before the failure lookup answers, then adds its jobs without the failed tile', async () => {
      const slide = (x: number, y: number) => ({ level: 0, z: 0, t: 0, x, y });
      const p = await claimed.service.planner.plan(WHOLE_SLIDE.id, claimed.specId, Array.from({ length: 8 }, (_, i) => slide(i % 4, Math.floor(i / 4))));
      await claimed.failures.remember(p.tiles[2]!.key, { code: 'render_timeout', message: 'stopped at its deadline' }, 60_000);
      const wanted = jest.spyOn(claimed.queue, 'enqueueWanted');
      const enqueue = jest.spyOn(claimed.queue, 'enqueue');
      const lookup = holdLookup(claimed);
      const a = recorder();
      const request = claimed.service.request(p, p.tiles, TIER.visible, a.listener);
      await new Promise((r) => setTimeout(r, 10));
      // The lookup has not answered: every tile's demand is counted, by the claims (no demand.add of
      // its own, no enqueue waiting for the lookup), and no job is added yet.
      expect(wanted).toHaveBeenCalledTimes(1);
      expect(lookup.demandAdds).toEqual([]);
      expect(p.tiles.map((t) => claimed.demand.counts.get(t.key))).toEqual(p.tiles.map(() => 1));
      expect(claimed.queue.added).toEqual([]);
      lookup.answer();
      const result = await request;
      expect(result.pending).toHaveLength(8);
      expect(enqueue.mock.calls.flatMap(([items]) => items)).toHaveLength(wanted.mock.calls[0]![0].length); // the adds, nothing else
      expect(claimed.queue.added.sort()).toEqual(p.tiles.filter((_, i) => i !== 2).map((t) => t.key).sort());
      expect(claimed.queue.claims.has(p.tiles[2]!.key)).toBe(false);
      expect(claimed.demand.counts.has(p.tiles[2]!.key)).toBe(false);
      await new Promise((r) => setImmediate(r));
      expect(a.heard).toEqual([expect.objectContaining({ type: 'failed', key: p.tiles[2]!.key, code: 'render_timeout' })]);
    });

    it('counts a tile it does not claim (another listener here waits for it already) with the demand port, alongside the claims', async () => {
      const p = await plan(claimed, [at(0, 0), at(1, 0)]);
      await claimed.service.request(p, [p.tiles[0]!], TIER.visible, recorder().listener);
      const lookup = holdLookup(claimed);
      const request = claimed.service.request(p, p.tiles, TIER.visible, recorder().listener);
      await new Promise((r) => setTimeout(r, 10));
      expect(lookup.demandAdds).toEqual([[p.tiles[0]!.key]]);
      expect(p.tiles.map((t) => claimed.demand.counts.get(t.key))).toEqual([2, 1]);
      lookup.answer();
      await request;
      expect(claimed.queue.added).toEqual([p.tiles[0]!.key, p.tiles[1]!.key]);
    });

    it('for a request larger than one slice, counts demand and looks up failures first, then enqueues (bounded Redis work per turn)', async () => {
      const slide = (x: number, y: number) => ({ level: 0, z: 0, t: 0, x, y });
      const p = await claimed.service.planner.plan(WHOLE_SLIDE.id, claimed.specId, Array.from({ length: 80 }, (_, i) => slide(i % 10, Math.floor(i / 10))));
      const wanted = jest.spyOn(claimed.queue, 'enqueueWanted');
      const lookup = holdLookup(claimed);
      const request = claimed.service.request(p, p.tiles, TIER.ring, recorder().listener);
      await new Promise((r) => setTimeout(r, 10));
      expect(claimed.queue.claims.size).toBe(0); // nothing claimed before the lookup answers
      expect(claimed.queue.added).toEqual([]);
      lookup.answer();
      await request;
      expect(wanted).not.toHaveBeenCalled();
      expect(claimed.queue.added).toHaveLength(80);
    });
  });

  it('renders a remembered failure again once its memory has expired', async () => {
    const p = await plan(core, [at(0, 0)]);
    await core.failures.remember(p.tiles[0]!.key, { code: 'render_timeout', message: 'x' }, 1);
    await new Promise((r) => setTimeout(r, 5));
    await core.service.request(p, p.tiles, TIER.visible, recorder().listener);
    expect(core.queue.added).toEqual([p.tiles[0]!.key]);
  });

  describe('httpTile', () => {
    it('answers a stored tile from one storage read, without a job', async () => {
      const p = await plan(core, [at(1, 1)]);
      await core.store.put(p.tiles[0]!.key, Buffer.from('stored'));
      const got = await core.service.httpTile(DATASET.id, core.specId, at(1, 1), { wait: true, waitMs: 1000 });
      expect(got).toMatchObject({ kind: 'image', fromStore: true, body: Buffer.from('stored') });
      expect(core.queue.added).toEqual([]);
    });

    it('waits for the render, answers pending without waiting, and times out with render_timeout', async () => {
      const waiting = core.service.httpTile(DATASET.id, core.specId, at(0, 0), { wait: true, waitMs: 5000 });
      await new Promise((r) => setImmediate(r));
      const key = core.queue.added[0]!;
      await core.render(key);
      expect(await waiting).toMatchObject({ kind: 'image', fromStore: false, body: Buffer.from(`tile ${key}`) });
      expect(await core.service.httpTile(DATASET.id, core.specId, at(1, 0), { wait: false, waitMs: 5000 })).toMatchObject({ kind: 'pending' });
      const slow = core.service.httpTile(DATASET.id, core.specId, at(2, 0), { wait: true, waitMs: 10 });
      await expect(slow).rejects.toMatchObject({ code: 'render_timeout' });
      expect(core.queue.withdrawn).toContain((await plan(core, [at(2, 0)])).tiles[0]!.key);
    });

    it('passes a worker failure on with its code', async () => {
      const waiting = core.service.httpTile(DATASET.id, core.specId, at(0, 0), { wait: true, waitMs: 5000 });
      await new Promise((r) => setImmediate(r));
      core.fail(core.queue.added[0]!, 'render_timeout');
      await expect(waiting).rejects.toBeInstanceOf(TilefarmError);
      await expect(waiting).rejects.toMatchObject({ code: 'render_timeout', message: 'it broke' });
    });

    it('answers a remembered render_timeout at once, without waiting or queueing', async () => {
      const key = (await plan(core, [at(0, 0)])).tiles[0]!.key;
      await core.failures.remember(key, { code: 'render_timeout', message: 'stopped at its deadline' }, 60_000);
      const started = Date.now();
      await expect(core.service.httpTile(DATASET.id, core.specId, at(0, 0), { wait: true, waitMs: 5000 })).rejects.toMatchObject({ code: 'render_timeout', message: 'stopped at its deadline' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(core.queue.added).toEqual([]);
    });
  });
});
