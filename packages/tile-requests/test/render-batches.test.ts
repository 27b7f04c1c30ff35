import { DatasetCatalog } from '@tilefarm/datasets';
import { MAX_CHUNK_BATCH, MIN_JOBS_PER_REQUEST, TIER, TileRequestService, chunkGroupOf, jobPriority, renderBatches, type TilePlan } from '@tilefarm/tile-requests';
import { WHOLE_SLIDE, buildCore, recorder, type Core } from './support/fakes';

// Render jobs carrying several tiles (RENDER_BATCH_TILES = 4 here), on the in-memory fakes: the
// service's grouping, and every guarantee of one-tile jobs kept: coalescing exact across processes,
// visible first, withdrawal per tile, each tile announced on its own, the sweep.

const at = (x: number, y: number, z = 0, level = 0) => ({ level, z, t: 0, x, y });
/** A w × h screen at (x0, y0), row by row (the order a request lists a screen in). */
const screen = (x0: number, y0: number, w: number, h: number, z = 0) => Array.from({ length: w * h }, (_, i) => at(x0 + (i % w), y0 + Math.floor(i / w), z));

async function plan(core: Core, positions: Array<ReturnType<typeof at>>): Promise<TilePlan> {
  return core.service.planner.plan(WHOLE_SLIDE.id, core.specId, positions);
}

describe('TileRequestService with batch jobs (batchTiles 4)', () => {
  let core: Core;
  beforeEach(async () => {
    core = await buildCore({}, { batchTiles: 4 });
  });
  afterEach(() => core.service.stop());

  it('a screen of 16 tiles is 4 jobs of 4 adjacent tiles, in the request order, each job at its first tile priority', async () => {
    const p = await plan(core, screen(10, 10, 4, 4));
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    const keys = p.tiles.map((t) => t.key);
    expect(core.queue.batches).toEqual([keys.slice(0, 4), keys.slice(4, 8), keys.slice(8, 12), keys.slice(12, 16)]);
    expect(core.queue.jobs.size).toBe(4);
    expect(core.queue.order()).toEqual(keys);
    expect(core.queue.batches.map((b) => core.queue.priorityOf(b[0]!))).toEqual([0, 4, 8, 12].map((i) => jobPriority(TIER.visible, i)));
    expect(await core.service.readDepth()).toBe(16); // load shedding counts tiles, not jobs
  });

  it('a small request still spreads over the render slots: 8 tiles are 4 jobs of 2, 3 tiles 3 jobs of 1', async () => {
    const p = await plan(core, screen(0, 0, 4, 2));
    await core.service.request(p, p.tiles, TIER.visible, recorder().listener);
    expect(core.queue.batches.map((b) => b.length)).toEqual([2, 2, 2, 2]);
    const q = await plan(core, screen(0, 5, 3, 1));
    await core.service.request(q, q.tiles, TIER.visible, recorder().listener);
    expect(core.queue.batches.slice(4).map((b) => b.length)).toEqual([1, 1, 1]);
    expect(MIN_JOBS_PER_REQUEST).toBe(4);
  });

  it('never mixes planes, and breaks a batch where the next tile is not next to it', async () => {
    const p = await plan(core, [...screen(0, 0, 2, 2, 0), ...screen(0, 0, 2, 2, 1), at(20, 20, 1), at(21, 20, 1), at(40, 40, 1), at(41, 41, 1)]);
    await core.service.request(p, p.tiles, TIER.ring, recorder().listener);
    const keys = p.tiles.map((t) => t.key);
    expect(core.queue.batches).toEqual([keys.slice(0, 3), [keys[3]!], keys.slice(4, 7), [keys[7]!], keys.slice(8, 10), keys.slice(10, 12)]);
    // The grouping alone: heavy renders (and regions) stand alone too.
    const jobs = p.tiles.slice(0, 2).map((t, i) => ({ job: { v: 1 as const, key: t.key, dataset: WHOLE_SLIDE.id, version: 1, specId: core.specId, tile: t.tile }, lane: i === 0 ? 'render' : 'heavy' }));
    expect(renderBatches([...jobs, ...jobs, ...jobs, ...jobs], 4).every((b) => b.length === 1)).toBe(true);
  });

  it('a linked Zarr with chunks of 4 × 4 tiles: a large request is one job per chunk (each chunk read by one worker), a small one still spreads over the render slots', async () => {
    const chunks = Array.from({ length: WHOLE_SLIDE.levels }, () => ({ z: 1, y: 1024, x: 1024 }));
    const linked = { ...WHOLE_SLIDE, id: 'linked', source: { kind: 'zarr' as const, url: 'file:l.zarr', zarrFormat: 2 as const, ngffVersion: '0.4', fingerprint: 'f', chunks } };
    await new DatasetCatalog(core.store, 0).publish(linked, { v: 1, dataset: linked.id, version: linked.version, planes: [] });
    // 8 × 8 tiles from (2, 2): parts of 9 chunks, listed row by row.
    const p = await core.service.planner.plan(linked.id, core.specId, screen(2, 2, 8, 8));
    await core.service.request(p, p.tiles, TIER.visible, recorder().listener);
    const chunkOf = (key: string) => {
      const t = p.tiles.find((x) => x.key === key)!.tile;
      return `${Math.floor(t.x / 4)},${Math.floor(t.y / 4)}`;
    };
    const batches = [...core.queue.batches];
    expect(batches.map((b) => new Set(b.map(chunkOf)).size)).toEqual(batches.map(() => 1));
    expect(batches.map((b) => chunkOf(b[0]!))).toEqual(['0,0', '1,0', '2,0', '0,1', '1,1', '2,1', '0,2', '1,2', '2,2']);
    expect(batches.map((b) => b.length)).toEqual([4, 8, 4, 8, 16, 8, 4, 8, 4]);
    // Each job at its best tile's priority; every tile queued once.
    expect(new Set(batches.flat()).size).toBe(64);
    expect(batches.map((b) => core.queue.priorityOf(b[0]!))).toEqual(batches.map((b) => Math.min(...b.map((k) => jobPriority(TIER.visible, p.tiles.findIndex((t) => t.key === k))))));
    // A screen of 8 tiles in one chunk: still 4 jobs of 2.
    const q = await core.service.planner.plan(linked.id, core.specId, screen(40, 40, 4, 2));
    await core.service.request(q, q.tiles, TIER.visible, recorder().listener);
    expect(core.queue.batches.slice(batches.length).map((b) => b.length)).toEqual([2, 2, 2, 2]);
  });

  it('the chunk a tile lies in: only for chunks spanning more than one tile (in the plane or through z), at that level', () => {
    const source = { kind: 'zarr' as const, url: 'file:l.zarr', zarrFormat: 2 as const, ngffVersion: '0.4', fingerprint: 'f' };
    const tile = { level: 0, x: 5, y: 6, z: 70 };
    const group = (chunk: { z: number; y: number; x: number } | undefined, at = tile) => chunkGroupOf({ tileSize: 256, source: { ...source, ...(chunk && { chunks: [chunk] }) } }, at);
    expect(group({ z: 1, y: 1024, x: 1024 })).toEqual({ key: '1,1,70', tiles: 16 });
    // Chunks off the tile grid: the chunk of the tile's first pixel (1280 / 1000, 1536 / 1000).
    expect(group({ z: 1, y: 1000, x: 1000 })).toEqual({ key: '1,1,70', tiles: 16 });
    expect(group({ z: 1, y: 512, x: 2048 })).toEqual({ key: '0,3,70', tiles: 16 });
    // 64³: one tile's place (4 × 4 chunks, keyed by the first) through the chunk's 64 slices.
    expect(group({ z: 64, y: 64, x: 64 })).toEqual({ key: '20,24,1', tiles: 64 });
    expect(group({ z: 1, y: 256, x: 256 })).toBeUndefined();
    expect(group({ z: 1, y: 128, x: 128 })).toBeUndefined();
    expect(group({ z: 1, y: 1024, x: 1024 }, { ...tile, level: 1 })).toBeUndefined();
    expect(group(undefined)).toBeUndefined();
    expect(chunkGroupOf({ tileSize: 256 }, tile)).toBeUndefined();
    expect(MAX_CHUNK_BATCH).toBe(16);
  });

  it('64³ chunks: a request through z slices is one job per tile place and chunk, its slices in order; a request of one plane stays in jobs of neighbours', async () => {
    const chunks = Array.from({ length: WHOLE_SLIDE.levels }, () => ({ z: 64, y: 64, x: 64 }));
    const linked = { ...WHOLE_SLIDE, id: 'deep', sizeZ: 128, source: { kind: 'zarr' as const, url: 'file:d.zarr', zarrFormat: 2 as const, ngffVersion: '0.4', fingerprint: 'f', chunks } };
    await new DatasetCatalog(core.store, 0).publish(linked, { v: 1, dataset: linked.id, version: linked.version, planes: [] });
    // 2 × 2 tiles over z 60-67 (two chunks deep), plane by plane, as a prefetch request lists them.
    const positions = [60, 61, 62, 63, 64, 65, 66, 67].flatMap((z) => screen(0, 0, 2, 2, z));
    const p = await core.service.planner.plan(linked.id, core.specId, positions);
    await core.service.request(p, p.tiles, TIER.ring, recorder().listener);
    const batches = [...core.queue.batches];
    const where = (key: string) => p.tiles.find((t) => t.key === key)!.tile;
    expect(batches).toHaveLength(8);
    for (const b of batches) {
      const tiles = b.map(where);
      expect(new Set(tiles.map((t) => `${t.x},${t.y},${Math.floor(t.z / 64)}`)).size).toBe(1);
      expect(tiles.map((t) => t.z)).toEqual(tiles[0]!.z < 64 ? [60, 61, 62, 63] : [64, 65, 66, 67]);
    }
    expect(batches.map((b) => where(b[0]!)).map((t) => [t.x, t.y, t.z])).toEqual([[0, 0, 60], [1, 0, 60], [0, 1, 60], [1, 1, 60], [0, 0, 64], [1, 0, 64], [0, 1, 64], [1, 1, 64]]);
    // One plane of 16 tiles: 4 jobs of 4 (each tile its own chunks in the plane).
    const q = await core.service.planner.plan(linked.id, core.specId, screen(10, 10, 4, 4, 5));
    await core.service.request(q, q.tiles, TIER.visible, recorder().listener);
    expect(core.queue.batches.slice(batches.length).map((b) => b.length)).toEqual([4, 4, 4, 4]);
  });

  it('coalescing stays exact across processes: another service enqueues only the tiles no live job owns, and each listener hears each tile once', async () => {
    const other = new TileRequestService({ planner: core.service.planner, queue: core.queue, events: core.events, demand: core.demand, store: core.store, maxQueueDepth: 1000, depthIntervalMs: 60_000, sweepIntervalMs: 60_000, rerankDelayMs: 0 });
    await other.start();
    try {
      const p = await plan(core, screen(0, 0, 4, 4));
      const [a, b] = [recorder(), recorder()];
      await core.service.request(p, p.tiles.slice(0, 8), TIER.visible, a.listener);
      // The other process asks for the whole screen: only the 8 tiles nobody holds become jobs.
      await other.request(p, p.tiles, TIER.visible, b.listener);
      expect(core.queue.added).toHaveLength(16);
      expect(new Set(core.queue.added).size).toBe(16);
      for (const t of p.tiles) await core.render(t.key);
      expect(a.heard.map((e) => e.key)).toEqual(p.tiles.slice(0, 8).map((t) => t.key));
      expect(b.heard.map((e) => e.key).sort()).toEqual(p.tiles.map((t) => t.key).sort());
      // Rendered and announced: the same tiles asked again are found in storage, not queued.
      const again = await other.request(p, p.tiles, TIER.visible, b.listener);
      expect(again.ready).toHaveLength(16);
    } finally {
      other.stop();
    }
  });

  it('a tile nobody wants leaves its batch (the rest stay queued); the last one takes the job along; a running batch keeps its tiles for the worker to skip', async () => {
    const p = await plan(core, screen(0, 0, 4, 4));
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    const [first, second] = core.queue.batches as [string[], string[]];
    expect(await core.service.release([first[0]!], a.listener)).toBe(1);
    expect(core.queue.order()).toEqual(p.tiles.slice(1).map((t) => t.key));
    expect(core.queue.jobs.size).toBe(4);
    expect(await core.service.release(first.slice(1), a.listener)).toBe(3);
    expect(core.queue.jobs.size).toBe(3);
    // A worker has started the second batch: its tiles are not withdrawn (the worker checks demand before each).
    const running = [...core.queue.jobs.values()].find((j) => j.job.key === second[0]);
    running!.state = 'active';
    expect(await core.service.release(second, a.listener)).toBe(0);
    expect(second.map((k) => core.demand.counts.get(k) ?? 0)).toEqual([0, 0, 0, 0]);
    expect(await core.service.readDepth()).toBe(12); // the running batch's 4 and the other 8
  });

  it('a listener joining a tile while it is withdrawn gets it queued again, on its own', async () => {
    const p = await plan(core, screen(0, 0, 4, 4));
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    const key = p.tiles[5]!.key;
    // Another process counts its demand (and finds the tile still held: its enqueue coalesces) between a's release and a's withdraw.
    const withdraw = core.queue.withdraw.bind(core.queue);
    core.queue.withdraw = async (k: string) => {
      await core.demand.add([k]);
      return withdraw(k);
    };
    expect(await core.service.release([key], a.listener)).toBe(0);
    expect(await core.queue.exists(key)).toBe(true);
    expect(core.queue.batches.at(-1)).toEqual([key]);
  });

  it('announces each tile as soon as it is rendered, not when its batch is done', async () => {
    const p = await plan(core, screen(0, 0, 4, 4));
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.visible, a.listener);
    await core.render(p.tiles[0]!.key);
    expect(a.heard.map((e) => e.key)).toEqual([p.tiles[0]!.key]);
    expect(core.queue.order()).toEqual(p.tiles.slice(1).map((t) => t.key));
  });

  it('a tile turning visible moves its whole batch ahead; the batch ranks by its best tile', async () => {
    const p = await plan(core, screen(0, 0, 4, 4));
    const a = recorder();
    await core.service.request(p, p.tiles, TIER.otherLevel, a.listener);
    const v = await plan(core, screen(10, 10, 2, 1));
    await core.service.request(v, v.tiles, TIER.ring, a.listener);
    expect(core.queue.order().slice(0, 2)).toEqual(v.tiles.map((t) => t.key));
    const last = core.queue.batches[3]!;
    await core.service.setTier([last[2]!], TIER.visible, a.listener);
    expect(core.queue.order().slice(0, 4)).toEqual(last);
    expect(core.queue.priorityOf(last[0]!)).toBe(jobPriority(TIER.visible, 14));
    // Back to its old tier: the batch goes back to its place.
    await core.service.setTier([last[2]!], TIER.otherLevel, a.listener);
    expect(core.queue.priorityOf(last[0]!)).toBe(jobPriority(TIER.otherLevel, 12));
  });

  it('the sweep re-enqueues a tile whose batch vanished, and announces one found stored', async () => {
    const swept = await buildCore({ sweepAfterMs: 0 }, { batchTiles: 4 });
    try {
      const p = await swept.service.planner.plan(WHOLE_SLIDE.id, swept.specId, screen(0, 0, 4, 4));
      const a = recorder();
      await swept.service.request(p, p.tiles, TIER.visible, a.listener);
      const [lost, stored] = [p.tiles[0]!.key, p.tiles[1]!.key];
      // The first batch is lost (its job and claims gone); one of its tiles was stored meanwhile.
      const id = swept.queue.claims.get(lost)!;
      swept.queue.jobs.delete(id);
      for (const k of p.tiles.slice(0, 4).map((t) => t.key)) swept.queue.claims.delete(k);
      await swept.store.put(stored, Buffer.from('x'));
      await swept.service.sweep();
      expect(a.heard.map((e) => e.key)).toEqual([stored]);
      expect(swept.queue.batches.slice(4)).toEqual([[lost], [p.tiles[2]!.key], [p.tiles[3]!.key]]);
      expect(await swept.queue.exists(lost)).toBe(true);
    } finally {
      swept.service.stop();
    }
  });
});
