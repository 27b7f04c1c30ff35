import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { SourceBufferPool, poolArenaBytesFor, encodeSourceTile, encodeSourceTileAs, readSourceTile, sourceTileKey } from '@tilefarm/datasets';

const KB = 1024;
const MB = 1024 * KB;

describe('SourceBufferPool', () => {
  it('reuses retired memory once no render that could hold it is in flight', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const older = pool.enter();
    const a = pool.allocate(1000);
    expect(a.length).toBe(1000);
    const newer = pool.enter();
    pool.retire(a); // the cache lets go while both renders may still read it
    expect(pool.allocate(1000).byteOffset).not.toBe(a.byteOffset);
    pool.leave(newer);
    expect(pool.stats().waiting).toBe(1); // the older render is still in flight
    pool.leave(older);
    expect(pool.stats()).toMatchObject({ waiting: 0, lent: 1 });
    // A render that starts after the retirement cannot reach it: reuse does not wait for it.
    pool.enter();
    const again = pool.allocate(1000);
    expect(again.buffer).toBe(a.buffer);
    expect(again.byteOffset).toBe(a.byteOffset);
    expect(pool.stats()).toMatchObject({ fromArena: 3, fresh: 0 });
  });

  it('serves any size from memory any other size gave back: stacks let go become tiles and planes, tiles let go become chunks again', () => {
    // A 64³ dataset's 2 MB stacks fill the arena; then a copied source's tiles (131,088 bytes: header
    // and samples) and read-back planes (131,072) take their memory; then 1024² chunks take theirs.
    const pool = new SourceBufferPool({ arenaBytes: 20 * MB });
    const stacks = Array.from({ length: 9 }, () => pool.allocate(2 * MB));
    expect(pool.stats().fresh).toBe(0);
    for (const s of stacks) pool.retire(s);
    const tiles = Array.from({ length: 60 }, (_, i) => pool.allocate(i % 2 ? 131_088 : 131_072));
    expect(pool.stats()).toMatchObject({ fresh: 0, lent: 60 });
    // In the stacks' memory (pages already in use), not past it.
    const stacksEnd = Math.max(...stacks.map((s) => s.byteOffset + s.length));
    expect(Math.max(...tiles.map((t) => t.byteOffset + t.length))).toBeLessThanOrEqual(stacksEnd);
    for (const t of tiles) pool.retire(t);
    // Given back, the tiles' spans merge: 2 MB fits again, nine times over.
    const chunks = Array.from({ length: 9 }, () => pool.allocate(2 * MB));
    expect(pool.stats()).toMatchObject({ fresh: 0, lent: 9 });
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(1);
  });

  it('retire with lastReadAt: memory no render in flight read is reused at once; memory one read waits for it', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const early = pool.enter();
    const cold = pool.allocate(1000);
    const readByEarly = pool.latestTicket(); // handed to a reader while `early` was the latest render
    pool.leave(early);
    const running = pool.enter(); // a render in flight that never read `cold`
    pool.retire(cold, readByEarly);
    expect(pool.stats()).toMatchObject({ waiting: 0, lent: 0 });
    expect(pool.allocate(1000).byteOffset).toBe(cold.byteOffset);
    // Read by the render in flight: waits for it, as a retirement without lastReadAt does.
    const hot = pool.allocate(2000);
    pool.retire(hot, pool.latestTicket());
    expect(pool.stats().waiting).toBe(1);
    expect(pool.allocate(2000).byteOffset).not.toBe(hot.byteOffset);
    pool.leave(running);
    expect(pool.allocate(2000).byteOffset).toBe(hot.byteOffset);
  });

  it('a view into a buffer (a raw-v1 tile\'s samples after its header) retires that buffer; recycle takes only a buffer\'s start', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const tile = pool.allocate(131_088);
    const samples = new Uint16Array(tile.buffer, tile.byteOffset + 16, 65_536);
    pool.recycle(samples); // not the buffer's start: left alone
    expect(pool.stats().lent).toBe(1);
    expect(pool.bytesBehind(samples)).toBe(131_088);
    pool.retire(samples);
    expect(pool.stats().lent).toBe(0);
    expect(pool.allocate(131_088).byteOffset).toBe(tile.byteOffset);
  });

  it('memory given back twice is handed out once; memory it did not hand out is ignored', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    pool.enter(); // a render in flight does not delay a recycled buffer
    const a = pool.allocate(4096);
    pool.recycle(a);
    pool.recycle(a);
    pool.retire(a);
    expect(pool.stats()).toMatchObject({ lent: 0, waiting: 0 });
    const b = pool.allocate(4096);
    const c = pool.allocate(4096);
    expect(b.byteOffset).toBe(a.byteOffset);
    expect(c.byteOffset).not.toBe(a.byteOffset);
    pool.recycle(new Uint8Array(4096)); // not the pool's
    pool.retire(Buffer.alloc(4096));
    expect(pool.stats().lent).toBe(2);
    expect(pool.bytesBehind(Buffer.allocUnsafeSlow(100))).toBe(100);
  });

  it('past its arena, fresh memory the collector frees: a render that never finishes holds spans, never more', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const big = pool.allocate(2 * MB);
    expect(big.buffer.byteLength).toBe(2 * MB); // memory of its own
    expect(pool.stats()).toMatchObject({ fromArena: 0, fresh: 1, lent: 0 });
    pool.retire(big); // ignored
    const stuck = pool.enter();
    for (let i = 0; i < 20; i++) pool.retire(pool.allocate(100 * KB));
    const { fromArena, fresh, waiting } = pool.stats();
    expect(fromArena).toBeLessThan(11); // about 1 MB's worth; then fresh
    expect(fresh).toBe(1 + 20 - fromArena);
    expect(waiting).toBe(fromArena);
    pool.leave(stuck);
    expect(pool.stats().waiting).toBe(0);
    expect(pool.allocate(900 * KB).buffer).not.toBe(big.buffer); // the arena is whole again
    expect(pool.stats().fresh).toBe(fresh);
  });

  it('without an arena (under 64 KB asked for), every buffer is fresh and giving back is a no-op', () => {
    const pool = new SourceBufferPool({ arenaBytes: 0 });
    const a = pool.allocate(1000);
    pool.recycle(a);
    expect(pool.allocate(1000).buffer).not.toBe(a.buffer);
    expect(pool.stats()).toMatchObject({ fromArena: 0, fresh: 2 });
  });

  it('hands out memory it does not zero (readers overwrite it): reused memory keeps what was in it', () => {
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const a = pool.allocate(1000);
    a.fill(7);
    pool.recycle(a);
    expect(pool.allocate(1000)[999]).toBe(7);
  });
});

describe('poolArenaBytesFor: the arena beside a worker\'s source cache', () => {
  it('the cache and half as much again, at least 32 MB more', () => {
    expect(poolArenaBytesFor(96 * MB)).toBe(144 * MB);
    expect(poolArenaBytesFor(8 * MB)).toBe(40 * MB);
  });

  it('beside a 64 MB cache that switches between datasets of 128 KB tiles and 2 MB chunks, no read, decode or tile takes fresh memory', () => {
    const cacheBytes = 64 * MB;
    const pool = new SourceBufferPool({ arenaBytes: poolArenaBytesFor(cacheBytes) });
    // An LRU cache of decoded entries; four renders in flight, each reading (a compressed 1.5 MB chunk
    // given back once decoded) and assembling a tile that waits for its render.
    const cached: Buffer[] = [];
    let cachedBytes = 0;
    const keep = (b: Buffer) => {
      cached.push(b);
      cachedBytes += b.length;
      while (cachedBytes > cacheBytes) {
        const old = cached.shift()!;
        cachedBytes -= old.length;
        pool.retire(old);
      }
    };
    const round = (entryBytes: number) => {
      const tickets = [0, 1, 2, 3].map(() => pool.enter());
      for (let i = 0; i < 4; i++) {
        const read = pool.allocate(entryBytes === 2 * MB ? 1.5 * MB : 131_088);
        keep(pool.allocate(entryBytes));
        pool.recycle(read);
        pool.retire(pool.allocate(131_072));
      }
      for (const t of tickets) pool.leave(t);
    };
    for (let i = 0; i < 64; i++) round(2 * MB); // the cache full of chunks
    const fresh = pool.stats().fresh;
    for (const entry of [131_072, 2 * MB, 131_072, 2 * MB]) for (let i = 0; i < 600; i++) round(entry);
    expect(pool.stats().fresh - fresh).toBe(0);
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
    const pool = new SourceBufferPool({ arenaBytes: 1 * MB });
    const data = Uint16Array.from({ length: 64 * 64 }, (_, i) => i);
    const at = (c: number) => ({ level: 0, t: 0, z: 0, c, x: 0, y: 0 });
    await store.put(sourceTileKey('d', 1, at(0)), encodeSourceTileAs('raw-v1', { width: 64, height: 64, dtype: 'uint16', data }));
    await store.put(sourceTileKey('d', 1, at(1)), encodeSourceTile({ width: 64, height: 64, dtype: 'uint16', data }));
    const raw = await readSourceTile(store, 'd', 1, at(0), pool);
    expect(Array.from(raw.data)).toEqual(Array.from(data));
    expect(raw.data.buffer).toBe(pool.allocate(1).buffer); // the arena
    expect(pool.stats()).toMatchObject({ lent: 2 });
    const deflated = await readSourceTile(store, 'd', 1, at(1), pool);
    expect(Array.from(deflated.data)).toEqual(Array.from(data));
    expect(pool.stats()).toMatchObject({ lent: 2 }); // its read given back
    pool.retire(raw.data);
    expect(pool.stats().lent).toBe(1);
    // Reused memory holds the new tile's bytes only.
    const again = await readSourceTile(store, 'd', 1, at(0), pool);
    expect(Array.from(again.data)).toEqual(Array.from(data));
    expect(again.data.byteOffset).toBe(raw.data.byteOffset);
  });
});
