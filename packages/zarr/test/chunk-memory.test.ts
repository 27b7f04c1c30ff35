import { basename } from 'node:path';
import type { SourceTile } from '@tilefarm/contracts';
import { SourceBufferPool } from '@tilefarm/datasets';
import { LruByteCache } from '@tilefarm/render';
import { LinkedZarrReader, openZarrImage, readTileFromChunks, zarritaLibrary, type ChunkMemory, type DecodedChunk } from '@tilefarm/zarr';
import { wrongFixtureSamples, zarrFixtures } from '../../../test/support/zarr-fixtures';
import { manifestFor, placeOf } from './linked-fixture';

const fixtures = zarrFixtures();

/**
 * The worker's pool, made to show any misuse: every buffer it hands out (fresh or reused) is
 * overwritten with 0xCD first, and every buffer recycled (reusable at once) with 0xEE. Whatever
 * still viewed memory that was given back too early reads those bytes, not the image's samples.
 */
function poisoningPool(arenaBytes: number) {
  const pool = new SourceBufferPool({ arenaBytes });
  let recycled = 0;
  const memory: ChunkMemory & { enter(): number; leave(t: number): void } = {
    allocate(size) {
      const b = pool.allocate(size);
      b.fill(0xcd);
      return b;
    },
    retire: (view) => pool.retire(view),
    recycle(view) {
      const before = pool.stats().lent;
      pool.recycle(view);
      // Taken back: poisoned before anything else can be handed it.
      if (pool.stats().lent < before) {
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength).fill(0xee);
        recycled++;
      }
    },
    bytesBehind: (view) => pool.bytesBehind(view),
    enter: () => pool.enter(),
    leave: (t) => pool.leave(t),
  };
  return { pool, memory, recycled: () => recycled };
}


describe('chunk memory reused the worker way (its source-buffer pool)', () => {
  it.each([
    ['04', fixtures.ngff04, true],
    ['05', fixtures.ngff05, false],
  ] as const)('NGFF %s: every tile read through reused memory holds the known values, with tiles of earlier reads still held', async (which, path, blosc) => {
    const { pool, memory, recycled } = poisoningPool(4 << 20);
    const place = placeOf(path);
    const opened = await openZarrImage(place, zarritaLibrary, basename(path), 1e12);
    const manifest = manifestFor(opened, `file:${basename(path)}`);
    const reader = new LinkedZarrReader({ resolve: () => place, library: zarritaLibrary, maxPixels: 1e12 });
    // Small, so chunks and planes are dropped (and their memory retired) all along.
    const cache = new LruByteCache<string, SourceTile | DecodedChunk>({ maxBytes: 1 << 20, dispose: (v) => memory.retire(v.data as unknown as ArrayBufferView) });
    const im = opened.image;
    const check = (tile: SourceTile, level: number, t: number, c: number, z: number, tx: number, ty: number) => wrongFixtureSamples(which, tile, level, t, c, z, tx, ty);
    for (let level = 0; level < im.levels.length; level++) {
      const cols = Math.ceil(Math.ceil(im.width / 2 ** level) / 256);
      const rows = Math.ceil(Math.ceil(im.height / 2 ** level) / 256);
      for (let z = 0; z < im.sizeZ; z++) {
        for (let ty = 0; ty < rows; ty++) {
          for (let tx = 0; tx < cols; tx++) {
            // One render: all channels, read together, then checked while it still holds them.
            const ticket = memory.enter();
            const t = im.sizeT - 1;
            const channels = Array.from({ length: im.sizeC }, (_, c) => c);
            const tiles = await Promise.all(channels.map((c) => reader.readTile(manifest, { level, t, c, z, x: tx, y: ty }, cache, memory)));
            // Other renders meanwhile: memory handed out now must be none of what this one holds.
            const others = Array.from({ length: 6 }, () => memory.allocate(256 * 256 * 2));
            for (const b of others) memory.retire(b);
            const wrong = tiles.map((tile, c) => check(tile, level, t, c, z, tx, ty));
            expect({ level, z, tx, ty, wrong }).toEqual({ level, z, tx, ty, wrong: channels.map(() => 0) });
            memory.leave(ticket);
          }
        }
      }
    }
    // Memory was reused; with Blosc (0.4: 2-deep chunks), some given back at once (compressed
    // chunks once decoded, deep chunks once their planes are copied). 0.5's zstd chunks, read by
    // range from shards, are decoded into the pool's memory too (libzstd writes into what it is given).
    expect(pool.stats().fromArena).toBeGreaterThan(50);
    if (blosc) expect(recycled()).toBeGreaterThan(20);
  });
});

describe('stacks of planes in reused memory (ChunkReading.stacks, the worker\'s reading)', () => {
  it('a tile that is a view of a stack keeps its values while its render holds it, the stack dropped and memory handed out meanwhile', async () => {
    const { pool, memory, recycled } = poisoningPool(16 << 20);
    const value = (z: number, y: number, x: number) => (z * 977 + y * 131 + x * 7) % 65521;
    // 64³ chunks, 4 × 4 of them under each 256² tile, decoded into the pool's memory as c-blosc decodes.
    const handle = {
      shape: [64, 512, 512], chunks: [64, 64, 64], dtype: 'uint16', fillValue: 0,
      async getChunk(coords: number[]): Promise<DecodedChunk> {
        const bytes = memory.allocate(64 ** 3 * 2);
        const data = new Uint16Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, 64 ** 3);
        for (let z = 0; z < 64; z++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) data[(z * 64 + y) * 64 + x] = value(z, coords[1]! * 64 + y, coords[2]! * 64 + x);
        return { data, shape: [64, 64, 64], stride: [64 * 64, 64, 1] };
      },
    };
    const image = { axes: ['z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];
    // Room for one stack (2 MB): each read of another tile drops the last one's, as the worker's cache gives its memory back.
    const cache = new LruByteCache<string, DecodedChunk>({ maxBytes: 2 << 20, dispose: (v) => memory.retire(v.data as unknown as ArrayBufferView) });
    const read = (tx: number, ty: number, z: number) => readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, x0: tx * 256, y0: ty * 256, width: 256, height: 256 }, cache as never, 'k', { memory, stacks: true });
    for (const [tx, ty, z] of [[0, 0, 3], [1, 0, 20], [0, 1, 37], [1, 1, 63], [0, 0, 4]] as const) {
      const ticket = memory.enter();
      const tile = await read(tx, ty, z);
      // Another render's tile drops this one's stack; memory handed out now must be none of it.
      await read((tx + 1) % 2, ty, z);
      for (const b of Array.from({ length: 4 }, () => memory.allocate(2 << 20))) memory.retire(b);
      let wrong = 0;
      for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) if (tile.data[y * 256 + x] !== value(z, ty * 256 + y, tx * 256 + x)) wrong++;
      expect({ tx, ty, z, wrong }).toEqual({ tx, ty, z, wrong: 0 });
      memory.leave(ticket);
    }
    // Stacks and decoded chunks came back to the pool: decoded chunks at once, stacks once their renders were done.
    expect(recycled()).toBeGreaterThan(100);
    expect(pool.stats().fromArena).toBeGreaterThan(100);
  });
});

describe('tiles from chunks, without copies that are not needed', () => {
  // A synthetic 1 × 512 × 768 uint16 image with a known value everywhere, chunks of `chunk`².
  const value = (y: number, x: number) => (y * 131 + x * 7) % 65521;
  function array(chunk: number, memory?: ChunkMemory) {
    const handle = {
      shape: [1, 512, 768], chunks: [1, chunk, chunk], dtype: 'uint16', fillValue: 0,
      async getChunk(coords: number[]): Promise<DecodedChunk> {
        const n = chunk * chunk;
        const bytes = memory?.allocate(n * 2);
        const data = bytes ? new Uint16Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, n) : new Uint16Array(n);
        for (let y = 0; y < chunk; y++) for (let x = 0; x < chunk; x++) data[y * chunk + x] = value(coords[1]! * chunk + y, coords[2]! * chunk + x);
        return { data, shape: [1, chunk, chunk], stride: [chunk * chunk, chunk, 1] };
      },
    };
    return handle;
  }
  const image = { axes: ['z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];

  it('a tile that is exactly one chunk is that chunk\'s samples (a view of the cached chunk)', async () => {
    const cache = new LruByteCache<string, DecodedChunk>({ maxBytes: 64 << 20 });
    const tile = await readTileFromChunks(image, [array(256)], { level: 0, t: 0, c: 0, z: 0, x0: 256, y0: 256, width: 256, height: 256 }, cache as never, 'k');
    const chunk = cache.get('k/0/0.1.1')!;
    expect(tile.data.buffer).toBe((chunk.data as Uint16Array).buffer);
    expect(tile.data.length).toBe(256 * 256);
    expect([tile.data[0], tile.data[256 * 256 - 1]]).toEqual([value(256, 256), value(511, 511)]);
  });

  it('a tile assembled from several chunks lands in memory that stays its render\'s until the render is done', async () => {
    const { pool, memory } = poisoningPool(4 << 20);
    const cache = new LruByteCache<string, DecodedChunk>({ maxBytes: 64 << 20 });
    const ticket = memory.enter();
    // Chunks of 128²: 2 × 2 of them under the tile at (256, 0).
    const tile = await readTileFromChunks(image, [array(128)], { level: 0, t: 0, c: 0, z: 0, x0: 256, y0: 0, width: 256, height: 256 }, cache as never, 'k', { memory });
    expect(tile.data.buffer).toBe(pool.allocate(1).buffer); // the pool's arena
    const mine = tile.data.byteOffset;
    const meanwhile = Array.from({ length: 8 }, () => memory.allocate(256 * 256 * 2).byteOffset);
    expect(meanwhile).not.toContain(mine);
    let wrong = 0;
    for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) if (tile.data[y * 256 + x] !== value(y, 256 + x)) wrong++;
    expect(wrong).toBe(0);
    memory.leave(ticket);
    // Done: its memory is the next of that size handed out.
    expect(pool.allocate(256 * 256 * 2).byteOffset).toBe(mine);
  });
});

describe('a read that fails gives back every byte it took (the pool keeps no memory nobody holds)', () => {
  const image = { axes: ['z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];
  /** Chunks of `chunk` (z, y, x) decoded into the pool's memory, the one at `bad` failing after the others have started. */
  function failingArray(memory: ChunkMemory, chunk: [number, number, number], bad: string) {
    return {
      shape: [64, 512, 512], chunks: chunk, dtype: 'uint16', fillValue: 0,
      async getChunk(coords: number[]): Promise<DecodedChunk> {
        const n = chunk[0] * chunk[1] * chunk[2];
        const bytes = memory.allocate(n * 2);
        await new Promise((r) => setTimeout(r, coords.join('.') === bad ? 5 : 1));
        if (coords.join('.') === bad) {
          memory.recycle(bytes); // as zarr-library gives back a decode it refuses
          throw new Error(`chunk ${bad} is corrupt`);
        }
        return { data: new Uint16Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, n).fill(coords[2]!), shape: chunk, stride: [chunk[1] * chunk[2], chunk[2], 1] };
      },
    };
  }

  it.each([
    ['a tile\'s stack of 64³ windows', [64, 64, 64] as [number, number, number], true],
    ['a tile assembled from 128² chunks', [1, 128, 128] as [number, number, number], false],
  ])('%s', async (_, chunk, stacks) => {
    const pool = new SourceBufferPool({ arenaBytes: 64 << 20 });
    const cache = new LruByteCache<string, DecodedChunk>({ maxBytes: 32 << 20, dispose: (v) => pool.retire(v.data as unknown as ArrayBufferView) });
    const ticket = pool.enter();
    const read = readTileFromChunks(image, [failingArray(pool, chunk, chunk[0] === 64 ? '0.1.5' : '3.1.2')], { level: 0, t: 0, c: 0, z: 3, x0: 256, y0: 0, width: 256, height: 256 }, cache as never, 'k', { memory: pool, stacks });
    await expect(read).rejects.toThrow('chunk');
    pool.leave(ticket);
    cache.clear();
    expect(pool.stats()).toMatchObject({ lent: 0, lentBytes: 0, waiting: 0 });
  });
});
