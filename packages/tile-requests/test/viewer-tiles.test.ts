import { MAX_TILES_PER_REQUEST, type ServerToClientEvents } from '@tilefarm/contracts';
import { BUSY_VIEWPORT_SPACING, TIER, ViewerTiles, jobPriority, nearTimeTier, tierFor, tilesAround, visibleRect, type ViewState, type ViewerEmit } from '@tilefarm/tile-requests';
import { DATASET, TIMELAPSE, WHOLE_SLIDE, buildCore, type Core } from './support/fakes';

// One viewer's rules on in-memory fakes: budget, shedding, delivery once, and the viewport rules.

type Sent = Array<{ event: keyof ServerToClientEvents; payload: unknown }>;

function viewer(core: Core, limits: Partial<ConstructorParameters<typeof ViewerTiles>[0]['limits']> = {}, extra: { busy?: () => boolean } = {}) {
  const sent: Sent = [];
  const counts = { requested: 0, stored: 0, coalesced: 0, withdrawn: 0, notified: 0 };
  const emit: ViewerEmit = (event, ...args) => sent.push({ event, payload: args[0] });
  const clock = { ms: 0 };
  const tiles = new ViewerTiles({
    now: () => clock.ms,
    service: core.service,
    limits: { prefetchZ: 1, prefetchT: 0, maxPending: 100, queuedNoticeDepth: 0, viewportMaxTiles: 1024, viewportIntervalMs: 0, ...limits },
    counters: {
      requested: (n) => (counts.requested += n),
      stored: (n) => (counts.stored += n),
      coalesced: (n) => (counts.coalesced += n),
      withdrawn: (n) => (counts.withdrawn += n),
      notified: () => (counts.notified += 1),
    },
    tileUrl: (key) => `https://tiles.example/${key}`,
    emit,
    ...extra,
  });
  return { tiles, sent, counts, clock, events: (name: keyof ServerToClientEvents) => sent.filter((s) => s.event === name).map((s) => s.payload) };
}

const at = (x: number, y: number, z = 0, level = 0) => ({ level, z, t: 0, x, y });

describe('viewport rules', () => {
  const view: ViewState = { dataset: 'd', specId: 's', level: 1, z: 5, t: 0, x0: 2, y0: 2, x1: 3, y1: 3, zDirection: 1 };
  const tile = (x: number, y: number, z = 5, level = 1) => ({ level, z, t: 0, x, y, format: 'jpeg' as const });

  it('ranks visible, ring, slices ahead, slices behind, other levels; withdraws the rest', () => {
    expect(tierFor(view, 'd', 's', tile(2, 3), 2)).toBe(TIER.visible);
    expect(tierFor(view, 'd', 's', tile(4, 1), 2)).toBe(TIER.ring);
    expect(tierFor(view, 'd', 's', tile(2, 2, 6), 2)).toBe(TIER.ring + 1);
    expect(tierFor(view, 'd', 's', tile(2, 2, 7), 2)).toBe(TIER.ring + 2);
    // Behind the scroll direction: after every slice ahead.
    expect(tierFor(view, 'd', 's', tile(2, 2, 4), 2)).toBe(TIER.ring + 1 + 2);
    expect(tierFor(view, 'd', 's', tile(2, 2, 5, 0), 2)).toBe(TIER.otherLevel);
    expect(tierFor(view, 'd', 's', tile(2, 2, 8), 2)).toBeUndefined(); // beyond ±k
    expect(tierFor(view, 'd', 's', tile(5, 2), 2)).toBeUndefined(); // beyond the ring
    expect(tierFor(view, 'd', 'other-spec', tile(2, 2), 2)).toBeUndefined();
    expect(tierFor(view, 'other', 's', tile(2, 2), 2)).toBeUndefined();
    expect(tierFor(undefined, 'd', 's', tile(9, 9), 2)).toBe(TIER.visible);
  });

  it('asks for the screen and its ring on this slice, and the screen only on ±k slices, inside the image', () => {
    const around = [...tilesAround({ ...view, x0: 0, y0: 0, x1: 1, y1: 0 }, 1, 4, 2, 6)];
    const onSlice = around.filter((a) => a.z === 5);
    expect(onSlice).toHaveLength(3 * 2); // x -1..2 clipped to 0..2, y -1..1 clipped to 0..1
    expect(around.filter((a) => a.z === 4)).toEqual([{ z: 4, t: 0, x: 0, y: 0 }, { z: 4, t: 0, x: 1, y: 0 }]);
    expect(around.some((a) => a.z === 6)).toBe(false); // sizeZ 6: z 6 does not exist
    expect(around.every((a) => a.t === 0)).toBe(true); // no time reach: this time point only
  });

  describe('time points', () => {
    const movie: ViewState = { ...view, t: 3, sizeT: 5 };
    const reach = { z: 1, t: 2 };
    const at = (t: number, x = 2, y = 2, z = 5, level = 1) => ({ level, z, t, x, y, format: 'jpeg' as const });

    it('ranks the screen at the next time points like slices ahead, wrapping as playback does', () => {
      expect(tierFor(movie, 'd', 's', at(4), reach)).toBe(nearTimeTier(1));
      expect(nearTimeTier(1)).toBe(TIER.ring + 1);
      expect(tierFor(movie, 'd', 's', at(0), reach)).toBe(nearTimeTier(2)); // 3 → 4 → 0
      expect(tierFor(movie, 'd', 's', at(1), reach)).toBeUndefined(); // 3 ahead: beyond reach
      expect(tierFor(movie, 'd', 's', at(2), reach)).toBeUndefined(); // behind playback
      // Only the screen, on the slice and level on screen: no ring, no z±k, no other level at other times.
      expect(tierFor(movie, 'd', 's', at(4, 4, 2), reach)).toBeUndefined();
      expect(tierFor(movie, 'd', 's', at(4, 2, 2, 6), reach)).toBeUndefined();
      expect(tierFor(movie, 'd', 's', at(4, 2, 2, 5, 0), reach)).toBeUndefined();
      // Without time reach nothing at another time point is wanted (the rule before time prefetch).
      expect(tierFor(movie, 'd', 's', at(4), 1)).toBeUndefined();
    });

    it('stepping back through time prefetches backwards', () => {
      const back: ViewState = { ...movie, tDirection: -1 };
      expect(tierFor(back, 'd', 's', at(2), reach)).toBe(nearTimeTier(1));
      expect(tierFor(back, 'd', 's', at(1), reach)).toBe(nearTimeTier(2));
      expect(tierFor(back, 'd', 's', at(4), reach)).toBeUndefined();
    });

    it('asks for the screen at the next time points, never the one on screen twice', () => {
      const around = [...tilesAround({ ...movie, x0: 0, y0: 0, x1: 1, y1: 0 }, reach, 4, 2, 6)];
      const later = around.filter((a) => a.t !== 3);
      expect(later).toEqual([
        { z: 5, t: 4, x: 0, y: 0 }, { z: 5, t: 4, x: 1, y: 0 },
        { z: 5, t: 0, x: 0, y: 0 }, { z: 5, t: 0, x: 1, y: 0 },
      ]);
      // Two time points in all: reach 2 never wraps back onto the time point on screen.
      const two = [...tilesAround({ ...movie, t: 0, sizeT: 2, x0: 0, y0: 0, x1: 0, y1: 0 }, { z: 0, t: 2 }, 4, 2, 6)];
      expect(two.filter((a) => a.t === 1)).toHaveLength(1);
    });
  });
});

describe('the visible rectangle', () => {
  it('is kept as named (corners in any order) while it fits, clipped to the grid', () => {
    expect(visibleRect({ x0: 5, y0: 1, x1: 2, y1: 3 }, 10, 10, 1024)).toEqual({ x0: 2, y0: 1, x1: 5, y1: 3 });
    expect(visibleRect({ x0: 0, y0: 0, x1: 1_000_000, y1: 7 }, 10, 4, 1024)).toEqual({ x0: 0, y0: 0, x1: 9, y1: 3 });
  });

  it('is cut around its centre to at most maxTiles, keeping its shape', () => {
    // All of a 131072² slide's level 0 (512×512 tiles) → the 32×32 in the middle.
    expect(visibleRect({ x0: 0, y0: 0, x1: 511, y1: 511 }, 512, 512, 1024)).toEqual({ x0: 240, y0: 240, x1: 271, y1: 271 });
    // A rectangle off centre is cut around its own centre.
    expect(visibleRect({ x0: 100, y0: 0, x1: 163, y1: 63 }, 512, 512, 16)).toEqual({ x0: 130, y0: 30, x1: 133, y1: 33 });
    // A strip stays a strip; an odd limit is never exceeded.
    expect(visibleRect({ x0: 0, y0: 0, x1: 511, y1: 0 }, 512, 512, 100)).toEqual({ x0: 206, y0: 0, x1: 305, y1: 0 });
    expect(visibleRect({ x0: 0, y0: 0, x1: 2, y1: 999 }, 512, 1000, 1024)).toEqual({ x0: 0, y0: 244, x1: 1, y1: 755 });
    for (const [w, h, max] of [[512, 512, 1], [512, 3, 7], [3, 512, 1000], [400, 300, 1023], [1, 1, 1]] as const) {
      const r = visibleRect({ x0: 0, y0: 0, x1: w - 1, y1: h - 1 }, 512, 512, max);
      const area = (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1);
      expect(area).toBeGreaterThanOrEqual(1);
      expect(area).toBeLessThanOrEqual(max);
      expect(r.x0).toBeGreaterThanOrEqual(0);
      expect(r.x1).toBeLessThan(w);
      expect(r.y1).toBeLessThan(h);
    }
  });
});

describe('a viewport over a whole 131072² slide', () => {
  let core: Core;
  beforeEach(async () => {
    core = await buildCore();
  });
  afterEach(() => core.service.stop());

  const fullSlide = (core: Core, z: number) => ({ dataset: WHOLE_SLIDE.id, spec: core.specId, level: 0, z, t: 0, x0: 0, y0: 0, x1: 511, y1: 511 });

  it('costs what a screen does: the centre of the slide is visible, prefetch stops at one request of tiles', async () => {
    const v = viewer(core, { prefetchZ: 2, maxPending: 2000, viewportMaxTiles: 1024 });
    const planned = jest.spyOn(core.service.planner, 'tile');
    const t0 = performance.now();
    await v.tiles.viewport(fullSlide(core, 2));
    const ms = performance.now() - t0;
    // 262,144 tiles named, ×5 slices with prefetch: before the cut, all of them were planned.
    expect(planned.mock.calls.length).toBeLessThanOrEqual(MAX_TILES_PER_REQUEST);
    expect(core.queue.added.length).toBe(MAX_TILES_PER_REQUEST);
    expect(core.store.tileHeads).toBe(MAX_TILES_PER_REQUEST);
    expect(v.tiles.pendingCount).toBe(MAX_TILES_PER_REQUEST);
    // Every tile asked for is on screen, in the 32×32 around the slide's centre, on the viewed slice.
    const tiles = [...core.queue.jobs.values()].map((j) => j.job.tile);
    expect(tiles.every((t) => t.z === 2 && t.x >= 240 && t.x <= 271 && t.y >= 240 && t.y <= 271)).toBe(true);
    expect(ms).toBeLessThan(2000); // generous for a loaded machine; the uncut rectangle took many seconds
  });

  it('a flood of full-slide viewports keeps every event bounded by the budget and the request size', async () => {
    const v = viewer(core, { prefetchZ: 2, maxPending: 2000, viewportMaxTiles: 1024 });
    const planned = jest.spyOn(core.service.planner, 'tile');
    for (let i = 0; i < 12; i++) {
      const added = core.queue.added.length;
      const calls = planned.mock.calls.length;
      const heads = core.store.tileHeads;
      // Far apart in Z, so every event withdraws what the last one asked for.
      await v.tiles.viewport(fullSlide(core, i % 2 === 0 ? 0 : 4));
      expect(core.queue.added.length - added).toBeLessThanOrEqual(MAX_TILES_PER_REQUEST);
      expect(core.store.tileHeads - heads).toBeLessThanOrEqual(MAX_TILES_PER_REQUEST);
      // Planned: the fresh tiles plus those skipped as already wanted or delivered.
      expect(planned.mock.calls.length - calls).toBeLessThanOrEqual(MAX_TILES_PER_REQUEST + 2000 + 4096);
      expect(v.tiles.pendingCount).toBeLessThanOrEqual(2000);
    }
    // The same rectangle again asks for the next slices' share, never past the budget.
    await v.tiles.viewport(fullSlide(core, 4));
    await v.tiles.viewport(fullSlide(core, 4));
    expect(v.tiles.pendingCount).toBe(2000);
    expect(core.queue.order().length).toBe(2000);
  });

  it('a coarser level that fits on a screen is prefetched whole', async () => {
    const v = viewer(core, { prefetchZ: 1, maxPending: 2000, viewportMaxTiles: 1024 });
    // Level 5: 16×16 tiles, 256 visible + z 1 and z 3.
    await v.tiles.viewport({ ...fullSlide(core, 2), level: 5, x1: 15, y1: 15 });
    expect(core.queue.added.length).toBe(256 * 3);
  });
});

describe('ViewerTiles', () => {
  let core: Core;
  beforeEach(async () => {
    core = await buildCore();
  });
  afterEach(() => core.service.stop());

  it('delivers each tile once: stored ones in the answer, the rest as tile:ready', async () => {
    const v = viewer(core);
    const first = await v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0)] });
    await core.render(first.pending[0]!.key);
    v.clock.ms += 60_000; // asked again long after it arrived: the viewer lost it
    const again = await v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0), at(1, 0)] });
    expect(again.ready.map((r) => r.key)).toEqual([first.pending[0]!.key]);
    expect(again.ready[0]!.url).toBe(`https://tiles.example/${first.pending[0]!.key}`);
    expect(v.events('tile:ready')).toHaveLength(1);
    expect(v.counts).toMatchObject({ requested: 3, stored: 1, notified: 1 });
    expect(v.tiles.pendingCount).toBe(1);
  });

  it('keeps a budget: explicit requests over maxPending are rejected with budget:exceeded', async () => {
    const v = viewer(core, { maxPending: 2 });
    const ack = await v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0), at(1, 0), at(2, 0)] });
    expect(ack.pending).toHaveLength(2);
    expect(ack.rejected.map((r) => r.tile.x)).toEqual([2]);
    expect(v.events('budget:exceeded')).toEqual([{ limit: 2, inFlight: 2, rejected: 1 }]);
    expect(core.queue.added).toHaveLength(2);
  });

  it('sheds: over the queue budget it answers stored tiles and rejects the rest with load:shed', async () => {
    const shedding = await buildCore({ maxQueueDepth: 1 });
    try {
      const v = viewer(shedding);
      const p = await shedding.service.planner.plan(DATASET.id, shedding.specId, [at(0, 0)]);
      await shedding.store.put(p.tiles[0]!.key, Buffer.from('x'));
      shedding.queue.depthOverride = 1;
      await shedding.service.readDepth();
      const ack = await v.tiles.request({ dataset: DATASET.id, spec: shedding.specId, tiles: [at(0, 0), at(1, 0)] });
      expect(ack.ready.map((r) => r.tile.x)).toEqual([0]);
      expect(ack.rejected.map((r) => r.tile.x)).toEqual([1]);
      expect(v.events('load:shed')).toEqual([{ reason: 'render queue is over capacity (1 waiting)', rejected: 1 }]);
      expect(v.tiles.pendingCount).toBe(0);
    } finally {
      shedding.service.stop();
    }
  });

  it('a tile announced before the answer goes out is listed as pending and delivered once, by the event', async () => {
    const v = viewer(core);
    const p = await core.service.planner.plan(DATASET.id, core.specId, [at(0, 0)]);
    const key = p.tiles[0]!.key;
    await core.queue.enqueue([{ job: { v: 1, key, dataset: p.manifest.id, version: p.manifest.version, specId: p.specId, spec: p.spec, tile: p.tiles[0]!.tile }, priority: 1, lane: 'render' }]);
    const open = core.store.holdTileReads();
    const asked = v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0)] });
    await new Promise((r) => setImmediate(r));
    await core.render(key);
    open();
    const ack = await asked;
    expect(ack.ready).toEqual([]);
    expect(ack.pending.map((t) => t.key)).toEqual([key]);
    expect(v.events('tile:ready').map((e) => (e as { key: string }).key)).toEqual([key]);
  });

  it('a request that crossed the tile:ready of a prefetched tile on the wire does not get it twice', async () => {
    const v = viewer(core, { prefetchZ: 1 });
    await v.tiles.viewport({ dataset: DATASET.id, spec: core.specId, level: 0, z: 2, t: 0, x0: 0, y0: 0, x1: 0, y1: 0 });
    const ahead = (await core.service.planner.plan(DATASET.id, core.specId, [at(0, 0, 3)])).tiles[0]!.key;
    await core.render(ahead);
    expect(v.events('tile:ready').map((e) => (e as { key: string }).key)).toEqual([ahead]);
    // The viewer scrolled to z 3 and asked for it before that tile:ready reached it.
    v.clock.ms += 50;
    const ack = await v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0, 3)] });
    expect(ack.ready).toEqual([]);
    expect(ack.pending.map((p) => p.key)).toEqual([ahead]);
    expect(v.events('tile:ready')).toHaveLength(1);
    expect(v.tiles.pendingCount).toBe(core.queue.order().length);
  });

  it('a viewport prefetches the ring and ±k slices, re-ranks what it waits for, and withdraws what it left', async () => {
    const v = viewer(core, { prefetchZ: 1 });
    await v.tiles.viewport({ dataset: DATASET.id, spec: core.specId, level: 0, z: 2, t: 0, x0: 0, y0: 0, x1: 0, y1: 0 });
    // 600×300 at 256: 3×2 tiles. Screen (0,0) + ring on z 2, the screen only on z 1 and z 3.
    const wanted = new Set(core.queue.order());
    expect(wanted.size).toBe(4 + 2);
    const p = await core.service.planner.plan(DATASET.id, core.specId, [at(0, 0, 2), at(0, 0, 3), at(0, 0, 1), at(1, 1, 2)]);
    const [visible, above, below, ring] = p.tiles.map((t) => t.key);
    expect(core.queue.order()[0]).toBe(visible);
    expect(core.queue.priorityOf(ring!)! < core.queue.priorityOf(above!)!).toBe(true);
    // Scroll up to z 3: z 3 becomes visible, z 2 the slice behind (ranked after every slice
    // ahead), z 1 falls out of range and is withdrawn.
    await v.tiles.viewport({ dataset: DATASET.id, spec: core.specId, level: 0, z: 3, t: 0, x0: 0, y0: 0, x1: 0, y1: 0 });
    expect(core.queue.withdrawn).toEqual([below]);
    expect(v.counts.withdrawn).toBe(1);
    expect(core.queue.order()[0]).toBe(above);
    const ahead = (await core.service.planner.plan(DATASET.id, core.specId, [at(0, 0, 4)])).tiles[0]!.key;
    expect(core.queue.priorityOf(ahead)! < core.queue.priorityOf(visible!)!).toBe(true);
    expect(core.queue.priorityOf(visible!)! < core.queue.priorityOf(ring!)!).toBe(true);
  });

  it('a viewer shown nothing of its view yet comes first: every such viewer\'s first visible tile before anyone\'s later ones', async () => {
    const screen = (z: number) => ({ dataset: DATASET.id, spec: core.specId, level: 0, z, t: 0, x0: 0, y0: 0, x1: 2, y1: 1 });
    const keys = async (z: number) => (await core.service.planner.plan(DATASET.id, core.specId, [0, 1, 2, 3, 4, 5].map((i) => at(i % 3, Math.floor(i / 3), z)))).tiles.map((t) => t.key);
    // A has been shown a tile of its view and scrolls on to z 1: the slice it left stays on its screen meanwhile.
    const a = viewer(core, { prefetchZ: 0 });
    await a.tiles.viewport(screen(0));
    const a0 = await keys(0);
    await core.render(a0[0]!);
    expect(a.events('tile:ready')).toHaveLength(1);
    await a.tiles.viewport(screen(1));
    // B and C open the same view on other slices: their screens are empty.
    const b = viewer(core, { prefetchZ: 0 });
    const c = viewer(core, { prefetchZ: 0 });
    await b.tiles.viewport(screen(3));
    await c.tiles.viewport(screen(4));
    const [a1, b3, c4] = [await keys(1), await keys(3), await keys(4)];
    const order = core.queue.order();
    // B's and C's tiles, round-robin, then A's new slice (then A's old one, behind nothing else).
    expect(order.slice(0, 12)).toEqual(b3.flatMap((k, i) => [k, c4[i]!]));
    expect(order.slice(12, 18)).toEqual(a1);
    expect(core.queue.priorityOf(b3[0]!)).toBe(jobPriority(TIER.emptyScreen, 0));
    expect(core.queue.priorityOf(a1[0]!)).toBe(jobPriority(TIER.visible, 0));
    // Once B has been shown a tile, its screen is ranked like anyone's at its next viewport.
    await core.render(b3[0]!);
    await b.tiles.viewport(screen(3));
    expect(core.queue.priorityOf(b3[1]!)).toBe(jobPriority(TIER.visible, 1));
    expect(core.queue.priorityOf(c4[1]!)).toBe(jobPriority(TIER.emptyScreen, 1));
  });

  it('BullMQ never sees priority 0 (no priority: such a job would jump every line)', () => {
    expect(jobPriority(TIER.emptyScreen, 0)).toBe(1);
    expect(jobPriority(TIER.emptyScreen, 998)).toBe(999);
    expect(jobPriority(TIER.emptyScreen, 5000)).toBeLessThan(jobPriority(TIER.visible, 0));
    expect(jobPriority(TIER.visible, 0)).toBe(1000);
  });

  it('applies at most one viewport per viewportIntervalMs: the latest waiting, the ones between skipped', async () => {
    const v = viewer(core, { prefetchZ: 0, viewportIntervalMs: 60 });
    const on = (z: number) => ({ dataset: DATASET.id, spec: core.specId, level: 0, z, t: 0, x0: 0, y0: 0, x1: 0, y1: 0 });
    const screens = (await core.service.planner.plan(DATASET.id, core.specId, [0, 1, 2, 3].map((z) => at(0, 0, z)))).tiles.map((t) => t.key);
    await v.tiles.viewport(on(0));
    const t0 = performance.now();
    await Promise.all([v.tiles.viewport(on(1)), v.tiles.viewport(on(2))]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect(core.queue.added).toContain(screens[0]);
    expect(core.queue.added).not.toContain(screens[1]);
    expect(core.queue.added).toContain(screens[2]);
    // Once the interval has passed (the viewer's clock), the next one is applied at once.
    v.clock.ms += 60;
    await v.tiles.viewport(on(3));
    expect(core.queue.added).toContain(screens[3]);
  });

  it('while the process is busy, viewports are applied BUSY_VIEWPORT_SPACING times further apart', async () => {
    let busy = false;
    const v = viewer(core, { prefetchZ: 0, viewportIntervalMs: 20 }, { busy: () => busy });
    const on = (z: number) => ({ dataset: DATASET.id, spec: core.specId, level: 0, z, t: 0, x0: 0, y0: 0, x1: 0, y1: 0 });
    await v.tiles.viewport(on(0));
    let t0 = performance.now();
    await v.tiles.viewport(on(1));
    expect(performance.now() - t0).toBeLessThan(20 * BUSY_VIEWPORT_SPACING - 20);
    busy = true;
    t0 = performance.now();
    await v.tiles.viewport(on(2));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20 * BUSY_VIEWPORT_SPACING - 5);
  });

  it('playback on a warm cache: the next time points are prefetched, stored ones announced at once, passed ones withdrawn', async () => {
    const v = viewer(core, { prefetchZ: 0, prefetchT: 2 });
    const screen = { dataset: TIMELAPSE.id, spec: core.specId, level: 0, z: 2, x0: 0, y0: 0, x1: 0, y1: 0 };
    const keyAt = async (t: number) => (await core.service.planner.plan(TIMELAPSE.id, core.specId, [{ level: 0, z: 2, t, x: 0, y: 0 }])).tiles[0]!.key;
    // Warm: t 1..3 are stored already (someone played this before).
    for (const t of [1, 2, 3]) await core.store.put(await keyAt(t), Buffer.from('tile'));
    await v.tiles.viewport({ ...screen, t: 0 });
    // t 1 and 2 are announced with their URLs at once, without waiting for any render.
    const announced = () => v.events('tile:ready').map((e) => (e as { tile: { t: number; z: number; x: number; y: number } }).tile);
    expect(announced().filter((t) => t.x === 0 && t.y === 0 && t.z === 2).map((t) => t.t)).toEqual([1, 2]);
    expect(core.queue.order()).not.toContain(await keyAt(1));
    // Playback steps to t 1: t 3 is announced, nothing already sent is sent again.
    await v.tiles.viewport({ ...screen, t: 1 });
    expect(announced().filter((t) => t.x === 0 && t.y === 0 && t.z === 2).map((t) => t.t)).toEqual([1, 2, 3]);
    // Cold time points are queued at the time tier, behind the screen; passed ones are withdrawn.
    await v.tiles.viewport({ ...screen, t: 3 });
    const k4 = await keyAt(4);
    const k5 = await keyAt(5);
    expect(core.queue.priorityOf(k4)! < core.queue.priorityOf(k5)!).toBe(true);
    expect(core.queue.priorityOf(await keyAt(3))).toBeUndefined(); // stored, on screen
    await v.tiles.viewport({ ...screen, t: 5 }); // t 4 passed: withdrawn; t 5 on screen now
    expect(core.queue.withdrawn).toContain(k4);
    expect(core.queue.withdrawn).not.toContain(k5);
    expect(core.queue.order()[0]).toBe(k5);
    // From the last time point playback wraps to the first: t 0 (cold) is queued right behind the
    // screen; t 1 (stored, announced before) is not announced again.
    expect(core.queue.order()).toContain(await keyAt(0));
    expect(announced().filter((t) => t.x === 0 && t.y === 0 && t.z === 2).map((t) => t.t)).toEqual([1, 2, 3]);
    // A Z-only dataset never gets time prefetch.
    const still = viewer(core, { prefetchZ: 0, prefetchT: 2 });
    await still.tiles.viewport({ ...screen, dataset: DATASET.id, t: 0 });
    const cellsJobs = core.queue.order().filter((k) => k.includes(`/${DATASET.id}/`));
    expect(cellsJobs.length).toBeGreaterThan(0);
    expect(cellsJobs.every((k) => core.queue.jobs.get(k)!.job.tile.t === 0)).toBe(true);
  });

  it('closing releases everything the viewer waited for', async () => {
    const v = viewer(core);
    await v.tiles.request({ dataset: DATASET.id, spec: core.specId, tiles: [at(0, 0), at(1, 0)] });
    await v.tiles.close();
    expect(core.queue.order()).toEqual([]);
    expect(core.demand.counts.size).toBe(0);
  });
});
