import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { SourceBufferPool, encodeSourceTile, encodeSourceTileAs, readSourceTile, sourceTileKey } from '@tilefarm/datasets';

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

  it('over maxFreeBytes, idle buffers of the sizes given back longest ago make room for the newest', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 10_000 });
    const old = [1, 2, 3, 4].map(() => pool.allocate(2000).buffer);
    const fresh = [1, 2, 3].map(() => pool.allocate(3000).buffer);
    for (const b of old) pool.recycle(b);
    for (const b of fresh) pool.recycle(b); // 8,000 + 9,000 bytes: the 2,000-byte ones go first
    expect(pool.stats()).toMatchObject({ free: 3, freeBytes: 9000 });
    expect(fresh).toContain(pool.allocate(3000).buffer);
    expect(old).not.toContain(pool.allocate(2000).buffer);
    // A buffer larger than the whole budget is not kept at all.
    pool.recycle(pool.allocate(20_000).buffer);
    expect(pool.stats().freeBytes).toBeLessThanOrEqual(10_000);
  });

  it('hands out memory it does not zero (readers overwrite it): a reused buffer keeps what was in it', () => {
    const pool = new SourceBufferPool({ maxFreeBytes: 1 << 20 });
    const a = pool.allocate(1000);
    a.fill(7);
    pool.recycle(a.buffer);
    expect(pool.allocate(1000)[999]).toBe(7);
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
