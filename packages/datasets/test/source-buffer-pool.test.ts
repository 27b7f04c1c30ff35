import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { SourceBufferPool, poolCapacityFor, poolIdleBytesFor, encodeSourceTile, encodeSourceTileAs, readSourceTile, sourceTileKey } from '@tilefarm/datasets';

describe('SourceBufferPool', () => {
  it('reuses a retired buffer of the same size once no render that could hold it is in flight', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const older = pool.enter();
    const a = pool.allocate(1000);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(1000);
    const newer = pool.enter();
    pool.retire(a.buffer); // the cache lets go while both renders may still read it
    expect(pool.allocate(1000).buffer).not.toBe(a.buffer);
    pool.leave(newer);
    expect(pool.stats().waiting).toBe(1); // the older render is still in flight
    pool.leave(older);
    expect(pool.stats()).toMatchObject({ waiting: 0, free: 1, freeBytes: 1000 });
    // A render that starts after the retirement cannot reach it: reuse does not wait for it.
    pool.enter();
    expect(pool.allocate(999).buffer).not.toBe(a.buffer); // other sizes are not served from it
    expect(pool.allocate(1000).buffer).toBe(a.buffer);
    expect(pool.stats()).toMatchObject({ reused: 1, free: 0 });
  });

  it('serves sizes a few bytes apart from one class: a raw-v1 source tile and a Zarr plane share memory', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const tile = pool.allocate(131_088); // a raw-v1 256² uint16 source tile: header and samples
    expect(tile.length).toBe(131_088);
    expect(tile.byteOffset).toBe(0);
    expect(tile.buffer.byteLength).toBe(poolCapacityFor(131_088));
    pool.recycle(tile.buffer);
    const plane = pool.allocate(131_072); // a plane read back from a 256² uint16 tile stack
    expect(plane.buffer).toBe(tile.buffer);
    expect(plane.length).toBe(131_072);
    expect(pool.stats()).toMatchObject({ reused: 1, allocated: 1, free: 0 });
    // The class costs little: under 64 KB every size is its own, above it at most 4,352 bytes more.
    expect(poolCapacityFor(1000)).toBe(1000);
    for (const size of [65_536, 131_072, 131_088, 524_288, 2 << 20, 33_333_333]) {
      expect(poolCapacityFor(size)).toBeGreaterThanOrEqual(size + 256);
      expect(poolCapacityFor(size) - size).toBeLessThanOrEqual(4096 + 256);
    }
    expect(poolCapacityFor(131_073 + 4096)).not.toBe(poolCapacityFor(131_072));
  });

  it('retire with lastReadAt: memory no render in flight read is reused at once; memory one read waits for it', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const early = pool.enter();
    const cold = pool.allocate(1000).buffer;
    const readByEarly = pool.latestTicket(); // handed to a reader while `early` was the latest render
    pool.leave(early);
    const running = pool.enter(); // a render in flight that never read `cold`
    pool.retire(cold, readByEarly);
    expect(pool.stats()).toMatchObject({ waiting: 0, free: 1 });
    expect(pool.allocate(1000).buffer).toBe(cold);
    // Read by the render in flight: waits for it, as a retirement without lastReadAt does.
    const hot = pool.allocate(2000).buffer;
    pool.retire(hot, pool.latestTicket());
    expect(pool.stats().waiting).toBe(1);
    expect(pool.allocate(2000).buffer).not.toBe(hot);
    pool.leave(running);
    expect(pool.allocate(2000).buffer).toBe(hot);
  });

  it('ignores memory it did not hand out, keeps at most maxFreeBytes idle and gives up waiting buffers past maxWaiting', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 2500, maxWaiting: 2 });
    pool.retire(new ArrayBuffer(1000));
    expect(pool.stats().free).toBe(0);
    const bufs = [1, 2, 3].map(() => pool.allocate(1000).buffer);
    for (const b of bufs) pool.retire(b);
    expect(pool.stats()).toMatchObject({ free: 2, freeBytes: 2000 });
    const stuck = pool.enter(); // a render that never finishes
    const more = [1, 2, 3].map(() => pool.allocate(1000).buffer);
    for (const b of more) pool.retire(b);
    expect(pool.stats().waiting).toBe(2);
    pool.leave(stuck);
    expect(pool.stats().waiting).toBe(0);
  });
});

describe('SourceBufferPool: memory given back at once, and what it keeps idle', () => {
  it('recycle: reusable at once (no render can hold it), and a buffer given back twice is handed out once', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    pool.enter(); // a render in flight does not delay a recycled buffer
    const a = pool.allocate(4096).buffer;
    pool.recycle(a);
    pool.recycle(a);
    pool.retire(a);
    expect(pool.stats()).toMatchObject({ free: 1, waiting: 0 });
    expect(pool.allocate(4096).buffer).toBe(a);
    expect(pool.allocate(4096).buffer).not.toBe(a);
    pool.recycle(new ArrayBuffer(4096)); // not the pool's
    expect(pool.stats().free).toBe(0);
  });

  it('over maxFreeBytes, the size holding the most idle bytes gives way: tile buffers coming back do not push chunk buffers out', () => {
    const KB = 1024;
    const pool = new SourceBufferPool({ maxFreeBytes: 20 * 1024 * KB });
    // A hundred idle tile buffers (128 KB, 17 MB with their class's slack) from earlier renders fill most of the budget.
    const tiles = Array.from({ length: 128 }, () => pool.allocate(128 * KB).buffer);
    for (const b of tiles) pool.recycle(b);
    // Four renders hold a tile buffer each while four 2 MB chunks are let go, then give the tiles back.
    const held = [1, 2, 3, 4].map(() => pool.allocate(128 * KB).buffer);
    const chunks = [1, 2, 3, 4].map(() => pool.allocate(2048 * KB).buffer);
    for (const b of chunks) pool.recycle(b);
    for (const b of held) pool.recycle(b);
    expect(pool.stats().freeBytes).toBeLessThanOrEqual(20 * 1024 * KB);
    // Every chunk buffer is still there for the next four decodes (trimming by age dropped them).
    const next = [1, 2, 3, 4].map(() => pool.allocate(2048 * KB).buffer);
    expect(next.filter((b) => chunks.includes(b))).toHaveLength(4);
    // A buffer larger than the whole budget is not kept at all.
    pool.recycle(pool.allocate(32 * 1024 * KB).buffer);
    expect(pool.stats().freeBytes).toBeLessThanOrEqual(20 * 1024 * KB);
  });

  it('a size nobody has asked for in the last 1024 allocations gives way first, however little it holds', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 10_000 });
    const stale = [1, 2].map(() => pool.allocate(2000).buffer);
    for (const b of stale) pool.recycle(b); // 4,000 bytes of a size then no longer asked for
    const inUse = Array.from({ length: 2000 }, () => pool.allocate(3000).buffer);
    for (const b of inUse.slice(0, 2)) pool.recycle(b); // 10,000: within the budget
    expect(pool.stats()).toMatchObject({ free: 4, freeBytes: 10_000 });
    pool.recycle(inUse[2]!); // over: the stale size goes, though the 3,000-byte size holds more
    expect(pool.stats()).toMatchObject({ free: 3, freeBytes: 9000 });
    expect(pool.allocate(2000).buffer).not.toBe(stale[0]);
  });

  it('hands out memory it does not zero (readers overwrite it): a reused buffer keeps what was in it', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const a = pool.allocate(1000);
    a.fill(7);
    pool.recycle(a.buffer);
    expect(pool.allocate(1000)[999]).toBe(7);
  });
});

describe('poolIdleBytesFor: what a worker keeps idle beside its source cache', () => {
  const MB = 1024 * 1024;

  /** Four renders in flight each decode a 2 MB chunk (read into 1.5 MB) while the cache lets go of the four before. */
  function fourRendersOfNewChunks(pool: SourceBufferPool, cached: ArrayBuffer[]): ArrayBuffer[] {
    const tickets = [0, 1, 2, 3].map(() => pool.enter());
    const decoded: ArrayBuffer[] = [];
    for (let i = 0; i < 4; i++) {
      const read = pool.allocate(1.5 * MB);
      decoded.push(pool.allocate(2 * MB).buffer as ArrayBuffer);
      pool.recycle(read.buffer);
    }
    for (const b of cached) pool.retire(b);
    for (const t of tickets) pool.leave(t);
    return decoded;
  }

  function freshAllocationsInSteadyState(maxFreeBytes: number): number {
    const pool = new SourceBufferPool({ maxFreeBytes });
    let cached = fourRendersOfNewChunks(pool, []);
    cached = fourRendersOfNewChunks(pool, cached);
    const before = pool.stats().allocated;
    for (let i = 0; i < 4; i++) cached = fourRendersOfNewChunks(pool, cached);
    return pool.stats().allocated - before;
  }

  it('a quarter of the cache, at least 4 MB', () => {
    expect(poolIdleBytesFor(64 * MB)).toBe(16 * MB);
    expect(poolIdleBytesFor(8 * MB)).toBe(4 * MB);
  });

  it('beside a 64 MB cache of 1024² Zarr chunks, every decode and read reuses memory the cache let go (a fixed 4 MB did not)', () => {
    expect(freshAllocationsInSteadyState(poolIdleBytesFor(64 * MB))).toBe(0);
    expect(freshAllocationsInSteadyState(4 * MB)).toBeGreaterThan(4);
  });
});

describe('readSourceTile with a pool', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-pool-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads raw-v1 into pooled memory (samples view it) and gives back the buffer of a deflated tile at once', async () => {
    const store = new LocalObjectStore(dir);
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const data = Uint16Array.from({ length: 64 * 64 }, (_, i) => i);
    const at = (c: number) => ({ level: 0, t: 0, z: 0, c, x: 0, y: 0 });
    await store.put(sourceTileKey('d', 1, at(0)), encodeSourceTileAs('raw-v1', { width: 64, height: 64, dtype: 'uint16', data }));
    await store.put(sourceTileKey('d', 1, at(1)), encodeSourceTile({ width: 64, height: 64, dtype: 'uint16', data }));
    const raw = await readSourceTile(store, 'd', 1, at(0), pool);
    expect(Array.from(raw.data)).toEqual(Array.from(data));
    expect(pool.stats()).toMatchObject({ allocated: 1, free: 0 });
    const deflated = await readSourceTile(store, 'd', 1, at(1), pool);
    expect(Array.from(deflated.data)).toEqual(Array.from(data));
    expect(pool.stats()).toMatchObject({ allocated: 2, free: 1 });
    pool.retire(raw.data.buffer);
    expect(pool.stats().free).toBe(2);
    // Reused memory holds the new tile's bytes only.
    const again = await readSourceTile(store, 'd', 1, at(0), pool);
    expect(Array.from(again.data)).toEqual(Array.from(data));
    expect(pool.stats().reused).toBe(1);
  });
});
