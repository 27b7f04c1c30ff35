import { LruByteCache } from '@tilefarm/render';
import { LinkedZarrReader, SharedChunkFiles, openZarrImage, readTileFromChunks, zarritaLibrary, type ZarrLibrary } from '@tilefarm/zarr';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { wrongFixtureSamples, zarrFixtures } from '../../../test/support/zarr-fixtures';
import { manifestFor, placeOf } from './linked-fixture';

let root: string;
const opened: SharedChunkFiles[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tilefarm-shared-chunks-'));
});
afterEach(() => {
  for (const shared of opened.splice(0)) shared.close();
  rmSync(root, { recursive: true, force: true });
});
/** A process's view of the machine's shared chunks (each test's own directory). */
function openShared(options: { maxBytes?: number; namespace?: string; staleMs?: number; dir?: string } = {}) {
  const shared = SharedChunkFiles.open({ dir: options.dir ?? join(root, 'chunks'), maxBytes: options.maxBytes ?? 64 << 20, namespace: options.namespace ?? 'tf', ...(options.staleMs ? { staleMs: options.staleMs } : {}) });
  opened.push(shared);
  return shared;
}
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
/** Its own time (a link's, not its target's) set `ms` back. */
const aged = (path: string, ms: number) => lutimesSync(path, (Date.now() - ms) / 1000, (Date.now() - ms) / 1000);

describe('SharedChunkFiles', () => {
  it('hands a chunk written by one process to another, whole, under the same key and namespace only', () => {
    const a = openShared();
    const b = openShared();
    a.write('zarr:d/1/0/0.0.1@16', bytes(4096, 7));
    const into = new Uint8Array(4096);
    expect(b.read('zarr:d/1/0/0.0.1@16', into)).toBe(true);
    expect(into).toEqual(bytes(4096, 7));
    expect(b.read('zarr:d/1/0/0.0.1@32', into)).toBe(false);
    // Another size than the reader expects: not this chunk (another layout or type): not read.
    expect(b.read('zarr:d/1/0/0.0.1@16', new Uint8Array(2048))).toBe(false);
    expect(openShared({ namespace: 'other' }).read('zarr:d/1/0/0.0.1@16', into)).toBe(false);
    expect(b.stats()).toMatchObject({ hits: 1 });
    // 4,096 bytes and a header, page-aligned.
    expect(a.stats()).toMatchObject({ writes: 1, bytes: 8192 });
  });

  it('keeps an entry of several parts (a tile\'s windows) as one, read back into parts of the same sizes or any split of them', () => {
    const a = openShared();
    const b = openShared();
    const parts = [bytes(3000, 1), bytes(5000, 2), bytes(100, 3)];
    a.write('zarr:d/1/0/0.0.0+3.3@16', parts);
    const into = [new Uint8Array(3000), new Uint8Array(5000), new Uint8Array(100)];
    expect(b.read('zarr:d/1/0/0.0.0+3.3@16', into)).toBe(true);
    expect(into).toEqual(parts);
    // The bytes one after the other: one buffer of the whole, or another split, reads the same.
    const whole = new Uint8Array(8100);
    expect(b.read('zarr:d/1/0/0.0.0+3.3@16', whole)).toBe(true);
    expect(whole).toEqual(Uint8Array.from([...parts[0]!, ...parts[1]!, ...parts[2]!]));
    // Parts of another total: not this entry.
    expect(b.read('zarr:d/1/0/0.0.0+3.3@16', [new Uint8Array(3000), new Uint8Array(5000)])).toBe(false);
    // 8,100 bytes and a header: two pages.
    expect(a.stats()).toMatchObject({ writes: 1, bytes: 8192 });
    expect(b.stats()).toMatchObject({ hits: 2 });
  });

  it('reads back part of an entry (a plane of a stack) at any offset inside it, only from an entry of the size the reader expects', () => {
    const a = openShared();
    const b = openShared();
    const stack = bytes(16 * 512, 5);
    a.write('zarr:d/1/0/0.0.0+1.1:stack@0', stack);
    const plane = new Uint8Array(512);
    expect(b.readPart('zarr:d/1/0/0.0.0+1.1:stack@0', plane, 9 * 512, 16 * 512)).toBe(true);
    expect(plane).toEqual(stack.subarray(9 * 512, 10 * 512));
    expect(b.readPart('zarr:d/1/0/0.0.0+1.1:stack@0', plane, 15 * 512, 16 * 512)).toBe(true);
    expect(plane).toEqual(stack.subarray(15 * 512));
    // Past its end, an entry of another size, a key nobody wrote: not read.
    expect(b.readPart('zarr:d/1/0/0.0.0+1.1:stack@0', plane, 15 * 512 + 1, 16 * 512)).toBe(false);
    expect(b.readPart('zarr:d/1/0/0.0.0+1.1:stack@0', plane, 0, 8 * 512)).toBe(false);
    expect(b.readPart('zarr:d/1/0/0.0.0+1.1:stack@16', plane, 0, 16 * 512)).toBe(false);
    expect(b.stats()).toMatchObject({ hits: 0, partHits: 2 });
  });

  it('lets one process decode a chunk at a time: a claim is taken once, given back, and taken over when stale or when the chunk is there already', () => {
    const a = openShared();
    const b = openShared();
    expect(a.claim('k')).toBe('mine');
    expect(b.claim('k')).toBe('theirs');
    a.release('k');
    expect(b.claim('k')).toBe('mine');
    // Its holder died while decoding: after a second, anyone takes the claim over.
    const claimFile = readdirSync(join(root, 'chunks')).find((f) => f.endsWith('.claim'))!;
    aged(join(root, 'chunks', claimFile), 5000);
    expect(a.claim('k')).toBe('mine');
    a.release('k');
    // Written between a reader's read and its claim: read it, do not decode it.
    b.write('k2', bytes(100, 1));
    expect(a.claim('k2')).toBe('theirs');
    expect(readdirSync(join(root, 'chunks')).filter((f) => f.endsWith('.claim'))).toEqual([]);
    expect(a.stats().misses + b.stats().misses).toBe(3);
  });

  it('keeps within its byte budget (its oldest overwritten first), never writes one chunk of over a quarter of it, and removes what it wrote when it closes', () => {
    // Entries of 8,000 bytes take 8 KiB of the arena (header, page-aligned): 8 fit in 64 KiB.
    const a = openShared({ maxBytes: 64 << 10 });
    const reader = openShared();
    for (let k = 0; k < 10; k++) a.write(`k${k}`, bytes(8000, k));
    expect(a.stats().bytes).toBe(64 << 10);
    expect(Array.from({ length: 10 }, (_, k) => reader.read(`k${k}`, new Uint8Array(8000)))).toEqual([false, false, true, true, true, true, true, true, true, true]);
    const into = new Uint8Array(8000);
    expect(reader.read('k9', into)).toBe(true);
    expect(into).toEqual(bytes(8000, 9));
    a.write('big', bytes(16 << 10, 0));
    expect(reader.read('big', new Uint8Array(16 << 10))).toBe(false);
    a.close();
    expect(readdirSync(join(root, 'chunks'))).toEqual([]);
  });

  it('never takes one chunk for another: a link naming another key\'s entry, or an older write of its own, is not read', () => {
    const a = openShared();
    a.write('x', bytes(5000, 1));
    const dir = join(root, 'chunks');
    const linkOf = (key: string) => join(dir, createHash('sha1').update(`tf\n${key}`).digest('hex'));
    const target = readlinkSync(linkOf('x'));
    symlinkSync(target, linkOf('y'));
    const reader = openShared();
    expect(reader.read('y', new Uint8Array(5000))).toBe(false);
    const [arena, offset, size, sequence] = target.split(':');
    unlinkSync(linkOf('x'));
    symlinkSync(`${arena}:${offset}:${size}:${Number(sequence) + 1}`, linkOf('x'));
    expect(reader.read('x', new Uint8Array(5000))).toBe(false);
    unlinkSync(linkOf('x'));
    symlinkSync(target, linkOf('x'));
    expect(reader.read('x', new Uint8Array(5000))).toBe(true);
  });

  it('never fails a render: with its directory gone, reads miss, writes are counted as failed, claims let the caller decode', () => {
    const a = openShared();
    a.write('k', bytes(100, 0));
    rmSync(join(root, 'chunks'), { recursive: true, force: true });
    expect(a.read('k', new Uint8Array(100))).toBe(false);
    expect(a.claim('k2')).toBe('mine');
    a.release('k2');
    a.write('k2', bytes(100, 0));
    expect(a.stats()).toMatchObject({ writes: 1, failedWrites: 1 });
    // Something not a link where a link would be: not read.
    mkdirSync(join(root, 'chunks'), { mode: 0o700 });
    writeFileSync(join(root, 'chunks', createHash('sha1').update('tf\nk3').digest('hex')), 'x');
    expect(a.read('k3', new Uint8Array(1))).toBe(false);
  });

  it('sweeps files left by processes that died', () => {
    const dead = openShared();
    dead.write('k', bytes(10, 0));
    for (const f of readdirSync(join(root, 'chunks'))) aged(join(root, 'chunks', f), 10 * 60_000);
    writeFileSync(join(root, 'chunks', 'left.tmp'), 'x');
    aged(join(root, 'chunks', 'left.tmp'), 10 * 60_000);
    openShared();
    expect(readdirSync(join(root, 'chunks'))).toEqual([]);
  });

  it('refuses a directory other users may enter, or one that is not a directory', () => {
    const open = join(root, 'open');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    expect(() => openShared({ dir: open })).toThrow(/may be entered by other users \(mode 755\)/);
    symlinkSync(join(root, 'elsewhere'), join(root, 'link'));
    mkdirSync(join(root, 'elsewhere'), { mode: 0o700 });
    expect(() => openShared({ dir: join(root, 'link') })).toThrow(/is not a directory/);
  });
});

/** zarrita, counting the chunks it decodes. */
function countingLibrary() {
  const counted = { decodes: 0 };
  const library: ZarrLibrary = {
    openGroup: (store, path) => zarritaLibrary.openGroup(store, path),
    openArray: async (store, path, format) => {
      const array = await zarritaLibrary.openArray(store, path, format);
      return { ...array, getChunk: (coords, planes) => (counted.decodes++, array.getChunk(coords, planes)) };
    },
  };
  return { library, counted };
}

/** A grid of `side` × `side` 64³ uint16 chunks (keyed "cy.cx") whose sample at image (z, y, x) is value(z, y, x). */
function deepChunks(side: number, value: (z: number, y: number, x: number) => number): Map<string, Uint16Array> {
  const chunks = new Map<string, Uint16Array>();
  for (let cy = 0; cy < side; cy++) for (let cx = 0; cx < side; cx++) {
    const data = new Uint16Array(64 * 64 * 64);
    for (let z = 0; z < 64; z++) for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) data[(z * 64 + y) * 64 + x] = value(z, cy * 64 + y, cx * 64 + x);
    chunks.set(`${cy}.${cx}`, data);
  }
  return chunks;
}

/**
 * A 1 × 64 × (side·64)² uint16 array of 64³ chunks holding `value`, counting decodes: each takes
 * `delayMs`; with `blockPlanes`, a decode yields the whole block of that many planes around the
 * window asked for, as c-blosc does (its decodes are then named with the window's first plane).
 */
function deepArray(side: number, value: (z: number, y: number, x: number) => number, options: { delayMs?: number; blockPlanes?: number } = {}) {
  const decodes: string[] = [];
  const chunks = deepChunks(side, value);
  const { delayMs, blockPlanes } = options;
  const handle = {
    shape: [1, 64, side * 64, side * 64], chunks: [1, 64, 64, 64], dtype: 'uint16', fillValue: 0,
    async getChunk(coords: number[], planes?: { from: number }) {
      decodes.push(blockPlanes ? `${coords.join('.')}@${planes?.from}` : coords.join('.'));
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const block = (planes?.from ?? 0) - ((planes?.from ?? 0) % (blockPlanes ?? 64));
      const data = chunks.get(`${coords[2]}.${coords[3]}`)!.slice();
      return { data, shape: [1, 64, 64, 64], stride: [64 ** 3, 64 * 64, 64, 1], ...(blockPlanes && { decodedPlanes: { from: block, to: block + blockPlanes - 1 } }) };
    },
  };
  return { handle, decodes };
}

const deepImage = { axes: ['c', 'z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];

describe('linked Zarr tiles through the shared chunks', () => {
  const fixtures = zarrFixtures();

  it.each([
    ['04', fixtures.ngff04],
    ['05', fixtures.ngff05],
  ] as const)('NGFF %s: a second process reads back what the first decoded, with the known values, and decodes nothing', async (which, path) => {
    const place = placeOf(path);
    const image = await openZarrImage(place, zarritaLibrary, basename(path), 1e12);
    const manifest = manifestFor(image, `file:${basename(path)}`);
    const scroll = async (shared: SharedChunkFiles) => {
      const { library, counted } = countingLibrary();
      const reader = new LinkedZarrReader({ resolve: () => place, library, maxPixels: 1e12, shared });
      const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
      for (let z = 0; z < image.image.sizeZ; z++) {
        for (const [tx, ty] of [[0, 0], [1, 1], [3, 2]] as const) {
          const tile = await reader.readTile(manifest, { level: 0, t: 0, c: 1, z, x: tx, y: ty }, cache);
          expect({ z, tx, ty, wrong: wrongFixtureSamples(which, tile, 0, 0, 1, z, tx, ty) }).toEqual({ z, tx, ty, wrong: 0 });
        }
      }
      return counted.decodes;
    };
    const first = openShared();
    const second = openShared();
    const decodedFirst = await scroll(first);
    expect(first.stats().writes).toBeGreaterThan(0);
    expect(await scroll(second)).toBe(0);
    expect(second.stats()).toMatchObject({ hits: first.stats().writes, misses: 0 });
    expect(decodedFirst).toBeGreaterThan(0);
  });

  it.each([
    ['windows', {}],
    ['stack', { stacks: true }],
  ])('two processes asking for the same 64³ tile at once decode each chunk once: one waits for the other\'s decode of the tile\'s %s', async (_, kept) => {
    const value = (z: number, y: number, x: number) => (z * 977 + y * 131 + x * 7) % 65521;
    // Made beforehand, so that a decode takes its 2 ms and little else: the other reader waits up
    // to SHARED_WAIT_MS (100) for the tile's 16 decodes, 4 at a time (~8 ms), even on a loaded machine.
    const { handle, decodes } = deepArray(4, value, { delayMs: 2 });
    const a = openShared();
    const b = openShared();
    const tile = (shared: SharedChunkFiles, z: number) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 256, height: 256 }, new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }), 'k', { shared, ...kept });
    const [ta, tb] = await Promise.all([tile(a, 20), tile(b, 21)]);
    expect([ta!.data[256 * 100 + 200], tb!.data[256 * 255 + 3]]).toEqual([value(20, 100, 200), value(21, 255, 3)]);
    // 16 chunks under the tile, one window each: 16 decodes, not 32; shared as one entry, claimed
    // once, written once and read back once.
    expect(decodes.length).toBe(16);
    expect(a.stats().misses + b.stats().misses).toBe(1);
    expect(a.stats().writes + b.stats().writes).toBe(1);
    expect(a.stats().hits + b.stats().hits).toBe(1);
    expect(existsSync(join(root, 'chunks'))).toBe(true);
  });

  it.each([
    ['windows', {}],
    ['stack', { stacks: true }],
  ])('shares the %s beside the one asked for that a decode yields (a Blosc block\'s other half): the other process reads it back at the next z window', async (_, kept) => {
    const value = (z: number, y: number, x: number) => (z * 613 + y * 97 + x * 5) % 65521;
    // A decoder of 32-plane blocks, as c-blosc decodes the usual 64³ chunks: asked for planes 0-15, it yields 0-31.
    const { handle, decodes } = deepArray(2, value, { blockPlanes: 32 });
    const a = openShared();
    const b = openShared();
    const cache = () => new LruByteCache<string, unknown>({ maxBytes: 64 << 20, maxOfferBytes: 16 << 20 });
    const tile = (shared: SharedChunkFiles, z: number) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 128, height: 128 }, cache(), 'k', { shared, ...kept });
    await tile(a, 5);
    // The tile's 4 chunks, decoded once each, for planes 0-15; planes 16-31 came with them.
    expect(decodes).toEqual(['0.0.0.0@0', '0.0.0.1@0', '0.0.1.0@0', '0.0.1.1@0']);
    // Two entries: the windows asked for, and the ones beside them.
    expect(a.stats()).toMatchObject({ misses: 1, writes: 2 });
    const later = await tile(b, 20);
    expect(decodes.length).toBe(4);
    // A stack is read back a plane at a time (the one asked for), windows whole.
    expect(b.stats()).toMatchObject('stacks' in kept ? { hits: 0, partHits: 1, misses: 0 } : { hits: 1, misses: 0 });
    for (const [y, x] of [[0, 0], [63, 64], [100, 127], [127, 3]] as const) expect(later.data[y * 128 + x]).toBe(value(20, y, x));
  });

  it('another process\'s stack is read back one plane at a time, each plane once, with the known values; a window nobody shared is decoded', async () => {
    const value = (z: number, y: number, x: number) => (z * 499 + y * 43 + x * 11) % 65521;
    const { handle, decodes } = deepArray(2, value);
    const a = openShared();
    const b = openShared();
    const bCache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    const tile = (shared: SharedChunkFiles, cache: LruByteCache<string, unknown>, z: number) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 128, height: 128 }, cache, 'k', { shared, stacks: true });
    await tile(a, new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }), 3);
    expect(a.stats()).toMatchObject({ misses: 1, writes: 1 });
    for (const z of [5, 9, 5, 15]) {
      const got = await tile(b, bCache, z);
      for (const [y, x] of [[0, 0], [63, 64], [100, 127], [127, 3]] as const) expect({ z, y, x, v: got.data[y * 128 + x] }).toEqual({ z, y, x, v: value(z, y, x) });
    }
    // Planes 5, 9 and 15, each once (the second 5 from the cache), and nothing decoded: a plane of
    // 128² uint16 each in the cache, not the 16-plane stack.
    expect(decodes.length).toBe(4);
    expect(b.stats()).toMatchObject({ hits: 0, partHits: 3, misses: 0 });
    expect(bCache.stats()).toMatchObject({ entries: 3, bytes: 3 * 128 * 128 * 2 });
    // Planes 16-31: a window nobody decoded yet, claimed and decoded here.
    const deeper = await tile(b, bCache, 20);
    expect(deeper.data[127 * 128 + 127]).toBe(value(20, 127, 127));
    expect(decodes.length).toBe(8);
    expect(b.stats()).toMatchObject({ partHits: 3, misses: 1, writes: 1 });
  });

  it('shareDecodes false (a job rendering the place\'s other slices itself): decodes write nothing to share, yet read back what another process shared', async () => {
    const value = (z: number, y: number, x: number) => (z * 313 + y * 29 + x * 13) % 65521;
    const { handle, decodes } = deepArray(2, value);
    const a = openShared();
    const b = openShared();
    const tile = (shared: SharedChunkFiles, z: number, shareDecodes: boolean) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 128, height: 128 }, new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }), 'k', { shared, stacks: true, shareDecodes });
    // Decoded here, not shared: the other process finds nothing and decodes too.
    expect((await tile(a, 3, false)).data[5]).toBe(value(3, 0, 5));
    expect(a.stats()).toMatchObject({ writes: 0 });
    expect((await tile(b, 4, true)).data[5]).toBe(value(4, 0, 5));
    expect(decodes.length).toBe(8);
    expect(b.stats()).toMatchObject({ misses: 1, writes: 1 });
    // What b shared is read back by a, even without sharing its own decodes.
    expect((await tile(a, 6, false)).data[127 * 128]).toBe(value(6, 127, 0));
    expect(decodes.length).toBe(8);
    expect(a.stats()).toMatchObject({ partHits: 1, writes: 0 });
  });

  it('two renders of one stack in one process decode it once and read nothing back (no wait on their own claim)', async () => {
    const value = (z: number, y: number, x: number) => (z * 211 + y * 17 + x * 5) % 65521;
    const { handle, decodes } = deepArray(2, value, { delayMs: 2 });
    const a = openShared();
    const cache = new LruByteCache<string, unknown>({ maxBytes: 64 << 20 });
    const tile = (z: number) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 128, height: 128 }, cache, 'k', { shared: a, stacks: true });
    const [t3, t9] = await Promise.all([tile(3), tile(9)]);
    expect([t3.data[128 * 127 + 5], t9.data[128 * 64 + 64]]).toEqual([value(3, 127, 5), value(9, 64, 64)]);
    expect(decodes.length).toBe(4);
    expect(a.stats()).toMatchObject({ misses: 1, writes: 1, hits: 0 });
  });

  it('a tile whose chunks reach into other tiles shares its windows of them as one entry, stacks or not', async () => {
    const value = (z: number, y: number, x: number) => (z * 389 + y * 61 + x * 3) % 65521;
    const { handle, decodes } = deepArray(2, value);
    const a = openShared();
    const b = openShared();
    // A 100² tile: its 2 × 2 chunks reach past it into the next tiles, so they are kept per chunk.
    const caches = [new LruByteCache<string, unknown>({ maxBytes: 64 << 20 }), new LruByteCache<string, unknown>({ maxBytes: 64 << 20 })] as const;
    const tile = (shared: SharedChunkFiles, z: number) => readTileFromChunks(deepImage, [handle], { level: 0, t: 0, c: 0, z, x0: 0, y0: 0, width: 100, height: 100 }, caches[shared === a ? 0 : 1], 'k', { shared, stacks: true });
    await tile(a, 3);
    const later = await tile(b, 4);
    expect(decodes).toEqual(['0.0.0.0', '0.0.0.1', '0.0.1.0', '0.0.1.1']);
    expect([a.stats().writes, b.stats().hits]).toEqual([1, 1]);
    // Read back into a window per chunk (a tile inside its chunks would hold one stack).
    expect(caches[1].stats().entries).toBe(4);
    for (const [y, x] of [[0, 0], [63, 64], [99, 99], [70, 3]] as const) expect(later.data[y * 100 + x]).toBe(value(4, y, x));
  });
});
