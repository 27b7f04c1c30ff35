import { TilefarmError, type RenderJob, type TileEvent } from '@tilefarm/contracts';
import { SourceBufferPool } from '@tilefarm/datasets';
import { LruByteCache, type RenderInput, type TileRenderer } from '@tilefarm/render';
import { createRegistry, createWorkerMetrics } from '@tilefarm/telemetry';
import { SpecRegistry } from '@tilefarm/tile-requests';
import { IMMUTABLE, RenderService, type RenderServiceDeps } from '../src/render-service';
import type { RenderFailure } from '../src/render-failure-log';
import { DATASET, FakeFailedTiles, FakeTileDemand, MemoryObjectStore } from '../../../packages/tile-requests/test/support/fakes';

// The worker's job handler on in-memory fakes: skip unwanted work, store before announcing,
// re-announce a stored tile without rendering, count waste, give up with the reason.

const JOB: RenderJob = {
  v: 1,
  key: 'tiles/aa/cells/v1/sabc/l0-z0-t0-x0-y0.png',
  dataset: DATASET.id,
  version: DATASET.version,
  specId: 's0123456789abcdef',
  spec: { v: 1, channels: [{ index: 0, gamma: 1, invert: false, active: true }], composite: 'add', format: 'png', quality: 85 },
  tile: { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'png' },
};

function setup(options: { renderMs?: number; sourceBuffers?: SourceBufferPool; /** Tile x whose render throws this. */ failAt?: { x: number; error: Error }; /** The renderer reads channel 0 of its plane, as a real one does. */ readsSource?: boolean; manifest?: typeof DATASET; pixels?: RenderServiceDeps['pixels']; sharedChunks?: RenderServiceDeps['sharedChunks'] } = {}) {
  const store = new MemoryObjectStore();
  const demand = new FakeTileDemand();
  const failures = new FakeFailedTiles();
  const published: TileEvent[] = [];
  const loggedFailures: RenderFailure[] = [];
  const renders: RenderInput[] = [];
  const renderer: TileRenderer = {
    async render(input) {
      renders.push(input);
      if (options.readsSource) await input.readSource(0, input.tile.z, input.tile.t);
      if (options.failAt && input.tile.x === options.failAt.x) throw options.failAt.error;
      if (options.renderMs) await new Promise((r) => setTimeout(r, options.renderMs));
      return { body: Buffer.from('png'), contentType: 'image/png', width: 256, height: 256, timings: { readMs: 1, compositeMs: 1, encodeMs: 1 } };
    },
    cacheStats: () => ({ plans: { hits: 0, misses: 0, bytes: 0, entries: 0, evictions: 0 }, levels: { hits: 0, misses: 0, bytes: 0, entries: 0, evictions: 0 } }) as unknown as ReturnType<TileRenderer['cacheStats']>,
  };
  const metrics = createWorkerMetrics(createRegistry('worker'));
  const puts: Array<{ key: string; cacheControl: string | undefined }> = [];
  const put = store.put.bind(store);
  store.put = async (key: string, body: Buffer, opts?: { cacheControl?: string }) => {
    puts.push({ key, cacheControl: opts?.cacheControl });
    await put(key, body);
  };
  const specs = new SpecRegistry(store);
  // Render claims like render-claims.ts: tile key → the batch job that owns it.
  const claims = new Map<string, string>();
  const service = new RenderService({
    store,
    specs,
    catalog: { getVersion: async () => options.manifest ?? DATASET, getStats: async () => undefined },
    renderer,
    sourceCache: new LruByteCache({ maxBytes: 1024 * 1024 }),
    ...(options.sourceBuffers && { sourceBuffers: options.sourceBuffers }),
    ...(options.sharedChunks && { sharedChunks: options.sharedChunks }),
    pixels: options.pixels ?? { read: async () => Promise.reject(new Error('stored datasets only here')) },
    demand,
    // Like the announce script: publish, then clear the demand and tell how many still wanted it.
    settlement: {
      announce: async (e) => {
        published.push(e);
        const n = await demand.count(e.key);
        demand.counts.delete(e.key);
        return n;
      },
    },
    claims: {
      take: async (key, jobId) => {
        if (claims.get(key) !== jobId) return 'other';
        if ((await demand.count(key)) <= 0) {
          claims.delete(key);
          return 'unwanted';
        }
        return 'render';
      },
      announce: async (e, jobId) => {
        const owned = claims.get(e.key) === jobId;
        if (!owned && e.type === 'failed') return -1;
        if (owned) claims.delete(e.key);
        published.push(e);
        const n = await demand.count(e.key);
        demand.counts.delete(e.key);
        return n;
      },
    },
    metrics,
    logger: { debug: () => undefined, warn: () => undefined } as never,
    failureLog: { failed: (f) => loggedFailures.push(f) },
    renderTimeoutMs: 200,
    failures,
    failureMemoryMs: 60_000,
  });
  const counter = async (name: 'skippedUnwanted' | 'wastedRenders' | 'renders' | 'sourceCacheHits' | 'sourceCacheMisses') => (await metrics[name].get()).values[0]?.value ?? 0;
  return { store, specs, demand, failures, published, renders, puts, service, counter, claims, loggedFailures, metrics };
}

describe('RenderService', () => {
  it('counts a linked Zarr\'s chunk windows as source reads, served from memory or from storage (as source tiles are)', async () => {
    // A linked Zarr: its reader asks the cache for chunk windows (here 3 per tile, one of them shared).
    const linked = setup({
      readsSource: true,
      manifest: { ...DATASET, source: { kind: 'zarr', url: 'x.zarr', zarrFormat: 2, ngffVersion: '0.4', fingerprint: 'f' } },
      pixels: {
        read: async (_m, p, chunks) => {
          for (const w of ['shared', `own-${p.x}-a`, `own-${p.x}-b`]) await chunks.getOrLoad(w, async () => ({ data: new Uint16Array(16), shape: [4, 4], stride: [4, 1] }));
          return { width: 4, height: 4, dtype: 'uint16', data: new Uint16Array(16) };
        },
      },
    });
    for (const x of [0, 1]) {
      const job = { ...JOB, key: JOB.key.replace('x0', `x${x}`), tile: { ...JOB.tile, x } };
      await linked.demand.add([job.key]);
      await linked.service.handle(job, { attempt: 1, waitedMs: 0 });
    }
    expect([await linked.counter('sourceCacheMisses'), await linked.counter('sourceCacheHits')]).toEqual([5, 1]);
  });

  it('counts the chunks read back from the machine\'s shared chunks, decoded, and written for the others', async () => {
    const stats = { hits: 0, partHits: 0, misses: 0, writes: 0, failedWrites: 0, bytes: 0 };
    const s = setup({ sharedChunks: { stats: () => ({ ...stats }) } });
    const series = async (name: 'sharedChunkReads' | 'sharedChunkWrites') => Object.fromEntries((await s.metrics[name].get()).values.map((v) => [v.labels.result, v.value]));
    for (const [x, counts] of [[0, { hits: 3, partHits: 4, misses: 2, writes: 2, failedWrites: 0 }], [1, { hits: 7, partHits: 9, misses: 2, writes: 2, failedWrites: 1 }]] as const) {
      Object.assign(stats, counts);
      const job = { ...JOB, key: JOB.key.replace('x0', `x${x}`), tile: { ...JOB.tile, x } };
      await s.demand.add([job.key]);
      await s.service.handle(job, { attempt: 1, waitedMs: 0 });
    }
    expect(await series('sharedChunkReads')).toEqual({ hit: 7, plane: 9, miss: 2 });
    expect(await series('sharedChunkWrites')).toEqual({ ok: 2, failed: 1 });
  });

  it('counts the memory its pool handed out for source reads: reused (from its arena), or fresh', async () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 << 20 });
    const s = setup({ sourceBuffers: pool });
    const series = async () => Object.fromEntries((await s.metrics.sourceBuffers.get()).values.map((v) => [v.labels.result, v.value]));
    for (const x of [0, 1]) {
      // Per render one buffer the 1 MB arena holds and one it cannot.
      const taken = [pool.allocate(1000), pool.allocate(2 << 20)];
      for (const b of taken) pool.recycle(b);
      const job = { ...JOB, key: JOB.key.replace('x0', `x${x}`), tile: { ...JOB.tile, x } };
      await s.demand.add([job.key]);
      await s.service.handle(job, { attempt: 1, waitedMs: 0 });
    }
    expect(await series()).toEqual({ fresh: 2, reused: 2 });
  });

  it('holds a source-buffer ticket until the renderer itself has settled, also past a timeout', async () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 << 20 });
    const s = setup({ renderMs: 400, sourceBuffers: pool });
    await s.demand.add([JOB.key]);
    const handled = s.service.handle(JOB, { attempt: 1, waitedMs: 0 }).catch((e: unknown) => e);
    expect(await handled).toMatchObject({ code: 'render_timeout' }); // renderTimeoutMs 200
    // The renderer still runs (it may still read its sources): their buffers must not be reused yet.
    expect(pool.stats().renders).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(pool.stats().renders).toBe(0);
  });

  it('skips a job nobody wants any more, before rendering anything', async () => {
    const s = setup();
    expect(await s.service.handle(JOB, { attempt: 1, waitedMs: 5 })).toBe('skipped');
    expect(s.renders).toEqual([]);
    expect(s.published).toEqual([]);
    expect(await s.counter('skippedUnwanted')).toBe(1);
  });

  it('stores the tile (immutable) before announcing it, and clears its demand', async () => {
    const s = setup();
    await s.demand.add([JOB.key]);
    expect(await s.service.handle(JOB, { attempt: 1, waitedMs: 5 })).toBe('rendered');
    expect(s.puts).toEqual([{ key: JOB.key, cacheControl: IMMUTABLE }]);
    expect(s.published).toEqual([expect.objectContaining({ type: 'ready', key: JOB.key, renderMs: expect.any(Number) })]);
    expect(s.demand.counts.has(JOB.key)).toBe(false);
    expect(await s.counter('renders')).toBe(1);
    expect(await s.counter('wastedRenders')).toBe(0);
  });

  it('renders a job that carries only its spec id with the spec registered under that id', async () => {
    const s = setup();
    const { id, spec } = await s.specs.register({ channels: [{ index: 0, color: '#00ff00', window: [10, 900] }], format: 'png' });
    const { spec: _inline, ...byId } = { ...JOB, specId: id };
    await s.demand.add([byId.key]);
    expect(await s.service.handle(byId, { attempt: 1, waitedMs: 0 })).toBe('rendered');
    expect(s.renders.map((r) => r.spec)).toEqual([spec]);
    // A spec id nobody registered: the job fails with the table's code, nothing is announced as ready.
    await s.demand.add(['tiles/other']);
    await expect(s.service.handle({ ...byId, key: 'tiles/other', specId: 'sffffffffffffffff' }, { attempt: 1, waitedMs: 0 })).rejects.toMatchObject({ code: 'spec_not_found' });
    expect(s.published.map((e) => e.key)).toEqual([byId.key]);
  });

  it('counts a render as wasted when nobody wanted the tile any more when it finished', async () => {
    const s = setup({ renderMs: 20 });
    await s.demand.add([JOB.key]);
    const running = s.service.handle(JOB, { attempt: 1, waitedMs: 0 });
    await new Promise((r) => setTimeout(r, 5));
    await s.demand.release([JOB.key]); // the viewer moved on mid-render
    await running;
    expect(await s.counter('wastedRenders')).toBe(1);
  });

  it('re-announces an already stored tile without rendering it again (at-least-once delivery)', async () => {
    const s = setup();
    await s.store.put(JOB.key, Buffer.from('png'));
    s.puts.length = 0;
    await s.demand.add([JOB.key]);
    await s.service.handle(JOB, { attempt: 2, waitedMs: 0 });
    expect(s.renders).toEqual([]);
    expect(s.puts).toEqual([]);
    expect(s.published.map((e) => e.type)).toEqual(['ready']);
    expect(s.demand.counts.has(JOB.key)).toBe(false);
  });

  it('bounds a render in time, and a job given up on tells everyone waiting why', async () => {
    const s = setup({ renderMs: 1000 });
    await s.demand.add([JOB.key]);
    await expect(s.service.handle(JOB, { attempt: 1, waitedMs: 0 })).rejects.toMatchObject({ code: 'render_timeout' });
    expect(s.published).toEqual([]);
    await s.service.giveUp(JOB, new TilefarmError('render_timeout', 'too slow'));
    expect(s.published).toEqual([expect.objectContaining({ type: 'failed', key: JOB.key, code: 'render_timeout', message: 'too slow' })]);
    expect(s.demand.counts.has(JOB.key)).toBe(false);
  });

  it('remembers a render_timeout (it would time out again) before announcing it, and nothing else', async () => {
    const s = setup();
    await s.service.giveUp({ ...JOB, key: 'tiles/other' }, new TilefarmError('render_failed', 'broke'));
    await s.service.giveUp(JOB, new TilefarmError('render_timeout', 'too slow'));
    expect(await s.failures.find([JOB.key, 'tiles/other'])).toEqual([{ code: 'render_timeout', message: 'too slow; not tried again for 60 s' }, undefined]);
    expect(s.failures.entries.get(JOB.key)!.until - Date.now()).toBeGreaterThan(59_000);
  });

  it('hands the renderer its deadline (RENDER_TIMEOUT_MS from the start), so the render stops itself there', async () => {
    const s = setup();
    await s.demand.add([JOB.key]);
    const before = performance.now();
    await s.service.handle(JOB, { attempt: 1, waitedMs: 0 });
    const deadline = s.renders[0]?.deadline;
    expect(deadline).toBeGreaterThanOrEqual(before + 200);
    expect(deadline).toBeLessThanOrEqual(performance.now() + 200);
  });
});

describe('RenderService, batch jobs (several tiles, owned through render claims)', () => {
  const ID = 'b7-1700000000000';
  const keyAt = (x: number) => `tiles/aa/cells/v1/sabc/l0-z0-t0-x${x}-y0.png`;
  const BATCH: RenderJob = { ...JOB, key: keyAt(0), batch: [1, 2, 3].map((x) => ({ key: keyAt(x), tile: { ...JOB.tile, x } })) };
  const claimAll = (s: ReturnType<typeof setup>) => {
    for (const x of [0, 1, 2, 3]) s.claims.set(keyAt(x), ID);
  };

  it('renders the tiles in order and announces each once it is stored, skipping one nobody wants and one another job owns', async () => {
    const s = setup();
    claimAll(s);
    s.claims.set(keyAt(2), 'b8-1700000000000');
    await s.demand.add([keyAt(0), keyAt(2), keyAt(3)]);
    // Announced as each is stored: the first tile is out before the last is rendered.
    const order: string[] = [];
    const put = s.store.put.bind(s.store);
    s.store.put = async (key: string, body: Buffer, o?: { cacheControl?: string }) => {
      order.push(`put ${key}`, ...s.published.map((e) => `heard ${e.key}`));
      await put(key, body, o);
    };
    expect(await s.service.handle(BATCH, { jobId: ID, attempt: 1, waitedMs: 0 })).toBe('rendered');
    expect(s.renders.map((r) => r.tile.x)).toEqual([0, 3]);
    expect(s.published.map((e) => [e.type, e.key])).toEqual([['ready', keyAt(0)], ['ready', keyAt(3)]]);
    expect(order).toEqual([`put ${keyAt(0)}`, `put ${keyAt(3)}`, `heard ${keyAt(0)}`]);
    expect(await s.counter('skippedUnwanted')).toBe(1);
    expect([...s.claims.keys()]).toEqual([keyAt(2)]); // only the other job's claim is left
  });

  it('a tile that fails for good is reported on its own and the batch goes on; a transient failure retries the job, which skips what was settled', async () => {
    const s = setup({ failAt: { x: 1, error: new TilefarmError('spec_too_expensive', 'too much') } });
    claimAll(s);
    await s.demand.add([0, 1, 2, 3].map(keyAt));
    expect(await s.service.handle(BATCH, { jobId: ID, attempt: 1, waitedMs: 0 })).toBe('rendered');
    expect(s.published.map((e) => [e.type, e.key])).toEqual([['ready', keyAt(0)], ['failed', keyAt(1)], ['ready', keyAt(2)], ['ready', keyAt(3)]]);
    expect(s.loggedFailures).toEqual([{ dataset: BATCH.dataset, key: keyAt(1), jobId: ID, code: 'spec_too_expensive', err: expect.objectContaining({ message: 'too much' }) }]);

    const t = setup({ failAt: { x: 2, error: new Error('EIO') } });
    claimAll(t);
    await t.demand.add([0, 1, 2, 3].map(keyAt));
    await expect(t.service.handle(BATCH, { jobId: ID, attempt: 1, waitedMs: 0 })).rejects.toThrow('EIO');
    expect(t.published.map((e) => e.key)).toEqual([keyAt(0), keyAt(1), keyAt(3)]);
    expect([...t.claims.keys()]).toEqual([keyAt(2)]);
    // Retries used up: only the tile still owned is reported failed.
    await t.service.giveUp(BATCH, new TilefarmError('unavailable', 'storage down'), undefined, ID);
    expect(t.published.map((e) => [e.type, e.key])).toEqual([['ready', keyAt(0)], ['ready', keyAt(1)], ['ready', keyAt(3)], ['failed', keyAt(2)]]);
  });

  it('a job of several slices of one tile place reads without sharing the stacks it decodes; a job of one plane\'s tiles, and a single tile, share them', async () => {
    const shares: Array<[string, boolean | undefined]> = [];
    const s = setup({
      readsSource: true,
      manifest: { ...DATASET, source: { kind: 'zarr', url: 'x.zarr', zarrFormat: 2, ngffVersion: '0.4', fingerprint: 'f' } },
      pixels: {
        read: async (_m, p, _chunks, _memory, shareDecodes) => {
          shares.push([`z${p.z} x${p.x}`, shareDecodes]);
          return { width: 4, height: 4, dtype: 'uint16', data: new Uint16Array(16) };
        },
      },
    });
    const zKey = (z: number) => `tiles/aa/cells/v1/sabc/l0-z${z}-t0-x0-y0.png`;
    const STACK: RenderJob = { ...JOB, key: zKey(0), batch: [1, 2].map((z) => ({ key: zKey(z), tile: { ...JOB.tile, z } })) };
    for (const z of [0, 1, 2]) s.claims.set(zKey(z), ID);
    await s.demand.add([0, 1, 2].map(zKey));
    await s.service.handle(STACK, { jobId: ID, attempt: 1, waitedMs: 0 });
    claimAll(s);
    await s.demand.add([1, 2].map(keyAt));
    const PLANE: RenderJob = { ...JOB, key: keyAt(1), tile: { ...JOB.tile, x: 1 }, batch: [{ key: keyAt(2), tile: { ...JOB.tile, x: 2 } }] };
    await s.service.handle(PLANE, { jobId: ID, attempt: 1, waitedMs: 0 });
    const single = { ...JOB, key: JOB.key.replace('z0', 'z5'), tile: { ...JOB.tile, z: 5 } };
    await s.demand.add([single.key]);
    await s.service.handle(single, { attempt: 1, waitedMs: 0 });
    expect(shares).toEqual([['z0 x0', false], ['z1 x0', false], ['z2 x0', false], ['z0 x1', true], ['z0 x2', true], ['z5 x0', true]]);
  });

  it('a single-tile job keyed by its tile (older gateways, RENDER_BATCH_TILES=1) takes the path it always took', async () => {
    const s = setup();
    await s.demand.add([JOB.key]);
    expect(await s.service.handle(JOB, { jobId: JOB.key, attempt: 1, waitedMs: 0 })).toBe('rendered');
    expect(s.published.map((e) => e.key)).toEqual([JOB.key]);
  });
});
