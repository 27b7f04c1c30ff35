import { LruByteCache, javascriptPixelKernels, nativePixelKernels } from '@tilefarm/render';
import { LinkedZarrReader, WINDOW_LOADS_IN_FLIGHT, openZarrImage, planeWindow, readTileFromChunks, zarritaLibrary, type ChunkMemory, type CopyRows } from '@tilefarm/zarr';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basename } from 'node:path';
import { fixtureValue, wrongFixtureSamples, zarrFixtures } from '../../../test/support/zarr-fixtures';
import { manifestFor, placeOf } from './linked-fixture';

const fixtures = zarrFixtures();


describe('OME-Zarr fixtures read through zarrita over the ObjectStore', () => {
  it('NGFF 0.4 (v2, blosc lz4/zstd, 200×300×2z chunks): metadata, omero defaults, physical size', async () => {
    const z = await openZarrImage(placeOf(fixtures.ngff04), zarritaLibrary, 'cells-ngff04.zarr', 1e12);
    expect(z.zarrFormat).toBe(2);
    expect(z.image).toMatchObject({ axes: ['c', 'z', 'y', 'x'], width: 900, height: 700, sizeC: 3, sizeZ: 6, sizeT: 1, dtype: 'uint16', fillValue: 0 });
    expect(z.image.levels.map((l) => l.shape)).toEqual([[3, 6, 700, 900], [3, 6, 350, 450], [3, 6, 175, 225], [3, 6, 88, 113]]);
    expect(z.image.channels).toEqual([
      { label: 'DAPI', color: '#0000ff', window: [100, 600] },
      { label: 'GFP', color: '#00ff00', window: [3100, 3600], active: false }, // inactive in the omero block: a dataset default
      { label: 'mCherry', color: '#ff0000', window: [6100, 6600] },
    ]);
    expect(z.image.physicalSize).toEqual({ x: 0.325, y: 0.325, z: 1, unit: 'µm' });
    expect(z.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  // Rows copied by set() per row (the default), and by the worker's kernels (JavaScript and C): the same samples.
  const native = nativePixelKernels();
  const copiers: [string, CopyRows | undefined][] = [['set() per row', undefined], ['the JavaScript kernel', javascriptPixelKernels.copyRows], ['the C kernel', 'error' in native ? () => { throw new Error(native.error); } : native.copyRows]];
  it.each((['04', '05'] as const).flatMap((which) => copiers.map(([how, copyRows]) => [which, how, copyRows] as const)))('NGFF %s, rows copied by %s: tiles assembled from chunks hold the known values at every level, fill value where a chunk is missing', async (which, _how, copyRows) => {
    const path = which === '04' ? fixtures.ngff04 : fixtures.ngff05;
    const place = placeOf(path);
    const opened = await openZarrImage(place, zarritaLibrary, basename(path), 1e12);
    const manifest = manifestFor(opened, `file:${basename(path)}`);
    const reader = new LinkedZarrReader({ resolve: () => place, library: zarritaLibrary, maxPixels: 1e12, ...(copyRows ? { copyRows } : {}) });
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    const im = opened.image;
    for (let level = 0; level < im.levels.length; level++) {
      const cols = Math.ceil(Math.ceil(im.width / 2 ** level) / 256);
      const rows = Math.ceil(Math.ceil(im.height / 2 ** level) / 256);
      for (const [t, c, z] of [[0, 0, 0], [im.sizeT - 1, im.sizeC - 1, im.sizeZ - 1], [im.sizeT - 1, im.sizeC - 1, 1], [0, 1, 3]] as const) {
        for (let ty = 0; ty < rows; ty++) {
          for (let tx = 0; tx < cols; tx++) {
            const tile = await reader.readTile(manifest, { level, t, c, z, x: tx, y: ty }, cache);
            const wrong = wrongFixtureSamples(which, tile, level, t, c, z, tx, ty);
            expect({ level, t, c, z, tx, ty, wrong }).toEqual({ level, t, c, z, tx, ty, wrong: 0 });
          }
        }
      }
    }
  });

  it('reads shards by byte range, not whole', async () => {
    const opened = await openZarrImage(placeOf(fixtures.ngff05), zarritaLibrary, 'cells-ngff05.zarr', 1e12);
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    const readsBefore = opened.readable.reads;
    const region = { level: 0, t: 0, c: 0, z: 2, x0: 256, y0: 256, width: 256, height: 256 };
    const tile = await readTileFromChunks(opened.image, opened.arrays, region, cache, 'k');
    expect(tile.data[0]).toBe(fixtureValue(0, 0, 2, 256, 256));
    // 256² at (256, 256) overlaps 2 × 3 inner chunks of 128 × 160 in 2 shards: index + chunk ranges only.
    expect(opened.readable.reads).toBe(readsBefore);
    expect(opened.readable.rangeReads).toBeGreaterThanOrEqual(2 + 6);
    const shardBytes = statSync(join(fixtures.ngff05, '0/c/0/0/0/1/0')).size + statSync(join(fixtures.ngff05, '0/c/0/0/0/1/1')).size;
    expect(opened.readable.bytesRead).toBeLessThan(shardBytes);
  });

  it('refuses a Zarr whose metadata changed after registration', async () => {
    const place = placeOf(fixtures.ngff04);
    const opened = await openZarrImage(place, zarritaLibrary, 'x', 1e12);
    const manifest = manifestFor(opened, 'file:x');
    manifest.source!.fingerprint = 'sha256:' + '0'.repeat(64);
    const reader = new LinkedZarrReader({ resolve: () => place, library: zarritaLibrary, maxPixels: 1e12 });
    await expect(reader.readTile(manifest, { level: 0, t: 0, c: 0, z: 0, x: 0, y: 0 }, new LruByteCache<string, unknown>({ maxBytes: 1 << 20 }))).rejects.toMatchObject({ code: 'source_unreadable', message: expect.stringMatching(/changed since it was registered/) });
  });

  it('refuses what is not an NGFF image, and a declared size over the limit', async () => {
    await expect(openZarrImage(placeOf(`${fixtures.ngff04}/0`), zarritaLibrary, 'level0', 1e12)).rejects.toMatchObject({ code: 'source_unreadable' });
    await expect(openZarrImage(placeOf(fixtures.dir), zarritaLibrary, 'dir', 1e12)).rejects.toMatchObject({ code: 'source_unreadable', message: expect.stringMatching(/not a Zarr group/) });
    await expect(openZarrImage(placeOf(fixtures.ngff04), zarritaLibrary, 'big', 1000)).rejects.toMatchObject({ code: 'source_unreadable', message: expect.stringMatching(/over this server's limit/) });
  });

  it('refuses chunks too large to decode within a worker\'s memory (one 16384² uint16 plane: 512 MiB), before reading any', async () => {
    // Metadata only: a read of its chunk would allocate the whole plane.
    const dir = mkdtempSync(join(tmpdir(), 'tilefarm-bigchunk-'));
    try {
      const zarr = join(dir, 'plane.zarr');
      mkdirSync(join(zarr, '0'), { recursive: true });
      writeFileSync(join(zarr, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
      writeFileSync(join(zarr, '.zattrs'), JSON.stringify({ multiscales: [{ version: '0.4', axes: [{ name: 'y', type: 'space' }, { name: 'x', type: 'space' }], datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [1, 1] }] }] }] }));
      writeFileSync(join(zarr, '0', '.zarray'), JSON.stringify({ zarr_format: 2, shape: [16384, 16384], chunks: [16384, 16384], dtype: '<u2', compressor: null, fill_value: 0, order: 'C', filters: null }));
      await expect(openZarrImage(placeOf(zarr), zarritaLibrary, 'plane', 1e12)).rejects.toMatchObject({
        code: 'source_unreadable',
        message: expect.stringMatching(/level 0 \("0"\) has chunks of \[16384,16384\] samples, 512 MiB decoded; this server reads chunks of at most 128 MiB/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chunks deeper than one z slice (64³)', () => {
  // A synthetic array with a known value at every position, in C and in F order (zarrita hands
  // F-order chunks with reversed strides), counting whole-chunk decodes.
  const value = (z: number, y: number, x: number) => (z * 977 + y * 131 + x * 7) % 65521;
  function array(order: 'C' | 'F') {
    const decodes: string[] = [];
    const shape = [1, 64, 200, 150];
    const chunks = [1, 64, 64, 64];
    const handle = {
      shape, chunks, dtype: 'uint16', fillValue: 0,
      async getChunk(coords: number[]) {
        decodes.push(coords.join('.'));
        const data = new Uint16Array(64 * 64 * 64);
        const stride = order === 'C' ? [64 * 64 * 64, 64 * 64, 64, 1] : [1, 1, 64, 64 * 64];
        for (let z = 0; z < 64; z++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) {
          const gy = coords[2]! * 64 + y;
          const gx = coords[3]! * 64 + x;
          data[z * stride[1]! + y * stride[2]! + x * stride[3]!] = gy < 200 && gx < 150 ? value(z, gy, gx) : 0;
        }
        return { data, shape: chunks, stride };
      },
    };
    return { handle, decodes };
  }
  const image = { axes: ['c', 'z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];

  it.each(['C', 'F'] as const)('%s order: scrolling z 0→63 and back decodes each chunk a few times, not once per z, with the known values', async (order) => {
    const { handle, decodes } = array(order);
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    const zs = [...Array.from({ length: 64 }, (_, z) => z), ...Array.from({ length: 64 }, (_, z) => 63 - z)];
    for (const z of zs) {
      const tile = await readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 }, cache, 'k');
      let wrong = 0;
      for (let y = 0; y < 200; y++) for (let x = 0; x < 150; x++) if (tile.data[y * 150 + x] !== value(z, y, x)) wrong++;
      expect({ z, wrong }).toEqual({ z, wrong: 0 });
    }
    // 4 × 3 chunks under the tile, each decoded once per window of 16 planes scrolling up (at z 0,
    // 16, 32, 48: 4 times, not 64; the ±8 planes kept before session 7 took 5), and not at all
    // scrolling back down (the windows are still held).
    expect(decodes.length).toBe(12 * 4);
    // What is held stays within the cache's byte budget: windows of planes, not 512 KB chunks,
    // one entry per window (17 entries per decode before).
    expect(cache.stats().bytes).toBeLessThanOrEqual(64 << 20);
    expect(cache.stats().entries).toBe(12 * 4);
    expect(cache.stats().bytes).toBe(12 * 4 * 16 * 64 * 64 * 2);
  });

  it('keeps planes in windows of 16 aligned to the chunk: the window of a plane does not depend on where a scroll began', () => {
    expect(planeWindow(20, 64)).toEqual({ from: 16, to: 31 });
    expect(planeWindow(16, 64)).toEqual({ from: 16, to: 31 });
    expect(planeWindow(15, 64)).toEqual({ from: 0, to: 15 });
    expect(planeWindow(63, 64)).toEqual({ from: 48, to: 63 });
    expect(planeWindow(3, 4)).toEqual({ from: 0, to: 3 });
    expect(planeWindow(37, 40)).toEqual({ from: 32, to: 39 });
  });

  it('a scroll of 16 slices from a window\'s first plane decodes each chunk once (twice with ±8 planes kept)', async () => {
    const { handle, decodes } = array('C');
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    for (let z = 32; z < 48; z++) {
      const tile = await readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 }, cache, 'k');
      expect(tile.data[150 * 17 + 42]).toBe(value(z, 17, 42));
    }
    expect(decodes.length).toBe(12);
  });

  it('a scroll of 16 slices from the middle of a 32-plane Blosc block decodes each chunk once: the block\'s other half is offered, and read from there', async () => {
    // As c-blosc does: a window asked for is decoded with the rest of its 32-plane block.
    const blocks = (handle: ReturnType<typeof array>['handle']) => ({ ...handle, getChunk: async (coords: number[], planes?: { from: number; to: number }) => {
      const chunk = await handle.getChunk(coords);
      return planes ? { ...chunk, decodedPlanes: { from: planes.from - (planes.from % 32), to: planes.from - (planes.from % 32) + 31 } } : chunk;
    } });
    const scroll = async (cache: LruByteCache<string, unknown>) => {
      const { handle, decodes } = array('C');
      for (let z = 8; z < 24; z++) {
        const tile = await readTileFromChunks(image, [blocks(handle)], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 }, cache, 'k');
        let wrong = 0;
        for (let y = 0; y < 200; y++) for (let x = 0; x < 150; x++) if (tile.data[y * 150 + x] !== value(z, y, x)) wrong++;
        expect({ z, wrong }).toEqual({ z, wrong: 0 });
      }
      return decodes.length;
    };
    const withReadAhead = new LruByteCache<string, unknown>({ maxBytes: 64 << 20, maxOfferBytes: 32 << 20 });
    expect(await scroll(withReadAhead)).toBe(12);
    expect(withReadAhead.stats()).toMatchObject({ offersKept: 12, offersRead: 12 });
    // Without bytes for offers: each chunk's block decoded again at z 16.
    expect(await scroll(new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }))).toBe(24);
  });

  it('asks the array for the window\'s planes only (a decoder may skip the rest)', async () => {
    const { handle } = array('C');
    const asked: unknown[] = [];
    const getChunk = handle.getChunk;
    const spy = { ...handle, getChunk: (coords: number[], planes?: unknown) => (asked.push(planes), getChunk(coords)) };
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    await readTileFromChunks(image, [spy], { level: 0, t: 0, c: 0, z: 37, x0: 0, y0: 0, width: 64, height: 64 }, cache, 'k');
    expect(asked).toEqual([{ axis: 1, from: 32, to: 47 }]);
  });

  it('a tile whose chunks the cache holds is read from them directly, not through a load per chunk', async () => {
    const { handle, decodes } = array('C');
    const lru = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    let loads = 0;
    const cache = { getOrLoad: (key: string, load: () => Promise<unknown>) => (loads++, lru.getOrLoad(key, load)), set: lru.set.bind(lru), has: lru.has.bind(lru), get: lru.get.bind(lru) };
    const region = (z: number) => ({ level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 });
    await readTileFromChunks(image, [handle], region(20), cache as never, 'k');
    expect(loads).toBe(12);
    const tile = await readTileFromChunks(image, [handle], region(21), cache as never, 'k');
    expect(tile.data[150 * 17 + 42]).toBe(value(21, 17, 42));
    expect({ loads, decodes: decodes.length, hits: lru.stats().hits }).toEqual({ loads: 12, decodes: 12, hits: 12 });
  });

  it(`loads at most ${WINDOW_LOADS_IN_FLIGHT} windows at once (read, decoded and copied before the next starts), with the known values`, async () => {
    const { handle } = array('C');
    let inFlight = 0;
    let most = 0;
    const slow = { ...handle, getChunk: async (coords: number[]) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return handle.getChunk(coords);
    } };
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    // Two tiles of 12 chunks each at once: 24 loads asked for together.
    const [a, b] = await Promise.all([20, 40].map((z) => readTileFromChunks(image, [slow], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 }, cache, 'k')));
    expect(most).toBe(WINDOW_LOADS_IN_FLIGHT);
    expect([a!.data[150 * 17 + 42], b!.data[150 * 199 + 149]]).toEqual([value(20, 17, 42), value(40, 199, 149)]);
  });

  it('scrolling down from the top decodes each chunk 4 times too, with the known values', async () => {
    const { handle, decodes } = array('C');
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    for (let z = 63; z >= 0; z--) {
      const tile = await readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 150, height: 200 }, cache, 'k');
      expect(tile.data[150 * 17 + 42]).toBe(value(z, 17, 42));
    }
    // At 63 (planes 48-63), then 47, 31 and 15.
    expect(decodes.length).toBe(12 * 4);
  });

  it('a cache that cannot be handed entries (registration) holds whole chunks: one decode per chunk', async () => {
    const { handle, decodes } = array('C');
    const held = new Map<string, Promise<unknown>>();
    const cache = { getOrLoad: (key: string, load: () => Promise<unknown>) => held.get(key) ?? (held.set(key, load()), held.get(key)!) };
    for (let z = 0; z < 64; z++) {
      const tile = await readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, x0: 64, y0: 64, width: 64, height: 64 }, cache as never, 'k');
      expect(tile.data[5 * 64 + 3]).toBe(value(z, 69, 67));
    }
    expect(decodes).toEqual(['0.0.1.1']);
  });

  describe('kept as the tile\'s stacks of planes (ChunkReading.stacks, as the worker reads)', () => {
    const stacks = { stacks: true };
    const read = (handle: ReturnType<typeof array>['handle'], z: number, cache: unknown, place = { x0: 0, y0: 0, width: 150, height: 200 }) => readTileFromChunks(image, [handle], { level: 0, t: 0, c: 0, z, ...place }, cache as never, 'k', stacks);

    it.each(['C', 'F'] as const)('%s order: scrolling z 0→63 and back decodes each chunk once per window, into one entry per window holding only the tile\'s pixels', async (order) => {
      const { handle, decodes } = array(order);
      const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
      for (const z of [...Array.from({ length: 64 }, (_, z) => z), ...Array.from({ length: 64 }, (_, z) => 63 - z)]) {
        const tile = await read(handle, z, cache);
        let wrong = 0;
        for (let y = 0; y < 200; y++) for (let x = 0; x < 150; x++) if (tile.data[y * 150 + x] !== value(z, y, x)) wrong++;
        expect({ z, wrong }).toEqual({ z, wrong: 0 });
      }
      expect(decodes.length).toBe(12 * 4);
      // One stack per window of 16 planes (windows per chunk: 12 per window), the chunks' parts past the array left out.
      expect(cache.stats().entries).toBe(4);
      expect(cache.stats().bytes).toBe(4 * 16 * 200 * 150 * 2);
    });

    it('a tile is a view of its stack: the slices of one window are one memory, another window another', async () => {
      const { handle } = array('C');
      const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
      const [a, b, c] = [await read(handle, 20, cache), await read(handle, 21, cache), await read(handle, 32, cache)];
      expect(b.data.buffer).toBe(a.data.buffer);
      expect(c.data.buffer).not.toBe(a.data.buffer);
      expect([a.data[150 * 199 + 149], b.data[0], c.data[150 * 17 + 42]]).toEqual([value(20, 199, 149), value(21, 0, 0), value(32, 17, 42)]);
    });

    it('tiles over chunks that reach into their neighbours keep a window per chunk: a chunk two tiles share is decoded once', async () => {
      const { handle, decodes } = array('C');
      const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
      // Tiles of 100² over 64³ chunks: chunks 1 (64-127) of x and y lie under two tiles each.
      for (const [x0, y0] of [[0, 0], [100, 0], [0, 100], [100, 100]] as const) {
        const width = Math.min(100, 150 - x0);
        const tile = await read(handle, 5, cache, { x0, y0, width, height: 100 });
        let wrong = 0;
        for (let y = 0; y < 100; y++) for (let x = 0; x < width; x++) if (tile.data[y * width + x] !== value(5, y0 + y, x0 + x)) wrong++;
        expect({ x0, y0, wrong }).toEqual({ x0, y0, wrong: 0 });
      }
      expect(decodes.sort()).toEqual(['0.0.0.0', '0.0.0.1', '0.0.0.2', '0.0.1.0', '0.0.1.1', '0.0.1.2', '0.0.2.0', '0.0.2.1', '0.0.2.2', '0.0.3.0', '0.0.3.1', '0.0.3.2']);
    });

    it('planes reaching past the array\'s edge are the fill value there, in reused memory too', async () => {
      const { handle } = array('C');
      const filled = { ...image, fillValue: 7 } as typeof image;
      const memory: ChunkMemory = { allocate: (size) => Buffer.alloc(size, 0xcd), retire: () => undefined, recycle: () => undefined, bytesBehind: (view) => view.buffer.byteLength };
      // A 256² tile of the 200 × 150 array: rows from 200 and columns from 150 lie past its edge.
      const tile = await readTileFromChunks(filled, [handle], { level: 0, t: 0, c: 0, z: 40, x0: 0, y0: 0, width: 256, height: 256 }, new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }), 'k', { ...stacks, memory });
      expect([tile.data[256 * 199 + 149], tile.data[256 * 199 + 150], tile.data[256 * 200], tile.data[256 * 256 - 1]]).toEqual([value(40, 199, 149), 7, 7, 7]);
    });

    it('the stack of a Blosc block\'s other half is offered, made of every chunk\'s other half, and read from there', async () => {
      const { handle, decodes } = array('C');
      const blocks = { ...handle, getChunk: async (coords: number[], planes?: { from: number; to: number }) => ({ ...(await handle.getChunk(coords)), decodedPlanes: { from: planes!.from - (planes!.from % 32), to: planes!.from - (planes!.from % 32) + 31 } }) };
      const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20, maxOfferBytes: 32 << 20 });
      for (let z = 8; z < 24; z++) expect((await read(blocks, z, cache)).data[150 * 17 + 42]).toBe(value(z, 17, 42));
      expect(decodes.length).toBe(12);
      expect(cache.stats()).toMatchObject({ offersKept: 1, offersRead: 1 });
    });

    it('a tile whose stack the cache holds is read from it directly, not through a load', async () => {
      const { handle, decodes } = array('C');
      const lru = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
      let loads = 0;
      const cache = { getOrLoad: (key: string, load: () => Promise<unknown>) => (loads++, lru.getOrLoad(key, load)), set: lru.set.bind(lru), has: lru.has.bind(lru), get: lru.get.bind(lru) };
      await read(handle, 20, cache);
      const tile = await read(handle, 21, cache);
      expect(tile.data[150 * 17 + 42]).toBe(value(21, 17, 42));
      expect({ loads, decodes: decodes.length, hits: lru.stats().hits }).toEqual({ loads: 1, decodes: 12, hits: 1 });
    });
  });
});
