import { LocalObjectStore } from '@tilefarm/storage';
import { MAX_CHUNK_BYTES, ObjectStoreReadable, reportZarrCodecsTo, zarritaLibrary, type ChunkMemory, type CodecReport, type ZarrLibrary } from '@tilefarm/zarr';
import { chunkFiles, decodeLikeNumcodecs, numcodecsCodec, readWhole as readWholeArray } from './whole-array';
import { openCBlosc } from '../src/blosc-codec';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bloscVariantFixtures, zarrFixtures, type BloscVariant } from '../../../test/support/zarr-fixtures';

// Blosc chunks written by Python's zarr / numcodecs (independent of us and of zarrita), decoded by
// c-blosc through koffi and by numcodecs' wasm build (zarrita's default): byte for byte the same,
// and equal to the samples numpy wrote beside them.

const reported: { level: 'info' | 'warn' | 'error'; fields: Record<string, unknown> }[] = [];
const capture: CodecReport = {
  info: (fields) => reported.push({ level: 'info', fields }),
  warn: (fields) => reported.push({ level: 'warn', fields }),
  error: (fields) => reported.push({ level: 'error', fields }),
};
reportZarrCodecsTo(capture);

const variants = bloscVariantFixtures();
const cells = zarrFixtures();

/** Every chunk of a variant read through `library`, as one C-order byte array. */
const readWhole = (library: ZarrLibrary, v: BloscVariant, memory?: ChunkMemory) => readWholeArray(library, variants.dir, v, memory);

/**
 * Chunk 0.0.0 of a variant through zarrita, whole and asked for plane 1 only, decoded into memory
 * as dirty as reuse leaves it (0xCD): what a decode skipped shows.
 */
async function wholeAndPlane1(v: BloscVariant) {
  const array = await zarritaLibrary.openArray(new ObjectStoreReadable(new LocalObjectStore(join(variants.dir, v.kind)), `${v.name}/`), '', v.kind === 'v2' ? 2 : 3);
  const memory: ChunkMemory = { allocate: (size) => Buffer.alloc(size, 0xcd), retire() {}, recycle() {}, bytesBehind: (view) => view.buffer.byteLength };
  return { whole: await array.getChunk([0, 0, 0], undefined, memory), plane1: await array.getChunk([0, 0, 0], { axis: 0, from: 1, to: 1 }, memory) };
}

describe('Blosc by c-blosc (koffi) against numcodecs and the written samples', () => {
  const native = openCBlosc();

  it('loads Debian libblosc1 and says so', () => {
    expect(native.description).toMatch(/^c-blosc 1\.\d+\.\d+/);
  });

  it('every chunk file of every variant and of the NGFF 0.4 fixture: c-blosc and numcodecs decode the same bytes', async () => {
    const dirs = [
      ...variants.variants.filter((v) => v.kind !== 'v3-sharded').map((v) => join(variants.dir, v.kind, v.name)),
      cells.ngff04,
    ];
    const seen = new Set<string>();
    const chunks = await decodeLikeNumcodecs(native, await numcodecsCodec('blosc', { id: 'blosc' }), dirs, variants.dir, (decoded, bytes) => {
      expect(decoded.byteLength).toBeGreaterThan(0);
      seen.add(`flags ${bytes[2]} typesize ${bytes[3]}`);
    });
    // 4 container formats (lz4hc writes lz4's) × 3 shuffles, stored-as-is chunks, 1-, 2- and 4-byte samples.
    expect(chunks).toBeGreaterThan(200);
    expect(seen.size).toBeGreaterThanOrEqual(16);
  });

  it.each(variants.variants.map((v) => [`${v.kind} ${v.name}`, v] as const))('%s through zarrita: every chunk holds the samples numpy wrote', async (_, v) => {
    const expected = readFileSync(join(variants.dir, v.kind, `${v.name}.raw`));
    const whole = await readWhole(zarritaLibrary, v);
    expect(Buffer.compare(whole, expected)).toBe(0);
  });

  it('with chunk memory (reads into reused buffers, decodes into reused memory of any contents, compressed bytes given back once decoded): every variant still holds the samples numpy wrote', async () => {
    // Memory as dirty as reuse can leave it (0xCD), and memory given back overwritten at once
    // (0xEE): a decode that skipped a byte, or anything still viewing a buffer given back, shows.
    const lent = new Set<ArrayBufferLike>();
    let recycled = 0;
    const memory: ChunkMemory = {
      allocate(size) {
        const b = Buffer.allocUnsafeSlow(size).fill(0xcd);
        lent.add(b.buffer);
        return b;
      },
      retire() {},
      bytesBehind: (view) => view.buffer.byteLength,
      recycle(view) {
        const buffer = view.byteOffset === 0 ? view.buffer : undefined;
        if (!buffer || !lent.delete(buffer)) return; // not lent (metadata-sized reads have memory of their own), as the pool ignores it
        new Uint8Array(buffer).fill(0xee);
        recycled++;
      },
    };
    for (const v of variants.variants) {
      const expected = readFileSync(join(variants.dir, v.kind, `${v.name}.raw`));
      expect({ variant: `${v.kind} ${v.name}`, equal: Buffer.compare(await readWhole(zarritaLibrary, v, memory), expected) === 0 }).toEqual({ variant: `${v.kind} ${v.name}`, equal: true });
    }
    // Every chunk file that is not in a shard (shards are read by range, into memory of their own).
    expect(recycled).toBeGreaterThan(100);
  });

  it('decodes into the memory it is given, exactly the declared size', () => {
    const file = chunkFiles(cells.ngff04)[0]!;
    const bytes = new Uint8Array(readFileSync(file));
    const sizes: number[] = [];
    const given = Buffer.alloc(1 << 20, 0xcd);
    const out = native.decode(bytes, MAX_CHUNK_BYTES, (size) => (sizes.push(size), new Uint8Array(given.buffer, given.byteOffset, size)));
    expect(out.buffer).toBe(given.buffer);
    expect(sizes).toEqual([out.byteLength]);
    expect(Buffer.compare(out, native.decode(bytes, MAX_CHUNK_BYTES))).toBe(0);
  });

  it('asked for a span, decodes the Blosc blocks holding it (the same bytes as a whole decode there) and leaves the other blocks unwritten', () => {
    let partial = 0;
    for (const v of variants.variants.filter((x) => x.kind === 'v2')) {
      for (const file of chunkFiles(join(variants.dir, 'v2', v.name))) {
        const bytes = new Uint8Array(readFileSync(file));
        const whole = native.decode(bytes, MAX_CHUNK_BYTES);
        const typesize = bytes[3]!;
        const blocksize = Buffer.from(bytes.buffer, bytes.byteOffset, 16).readUInt32LE(8);
        // Plane 1 of a chunk 2 planes deep, and a run of samples across a block's end.
        const plane = whole.byteLength / 2;
        const across = Math.min(blocksize, whole.byteLength / 2) - 2 * typesize;
        for (const wanted of [{ start: plane, end: whole.byteLength }, { start: across, end: across + 4 * typesize }]) {
          const given = Buffer.alloc(whole.byteLength, 0xcd);
          const out = native.decode(bytes, MAX_CHUNK_BYTES, (size) => new Uint8Array(given.buffer, given.byteOffset, size), wanted);
          expect({ file, wanted, equal: Buffer.compare(out.subarray(wanted.start, wanted.end), whole.subarray(wanted.start, wanted.end)) === 0 }).toEqual({ file, wanted, equal: true });
          // Blocks wholly before the span: never decoded (c-blosc's getitem copies out the span alone).
          if (bytes[2]! & 0x02) continue; // stored as is (memcpyed): no blocks
          const before = Math.floor(wanted.start / blocksize) * blocksize;
          if (before > 0 && out.subarray(0, before).every((b) => b === 0xcd)) partial++;
        }
      }
    }
    // The small-block and two-block chunks among them.
    expect(partial).toBeGreaterThan(10);
  });

  it('a span of a corrupt chunk: the same clear error as a whole decode', () => {
    const file = chunkFiles(join(variants.dir, 'v2', 'zstd-shuffle-uint16-blocks4k'))[0]!;
    const broken = new Uint8Array(readFileSync(file));
    const nbytes = Buffer.from(broken.buffer, broken.byteOffset, 16).readUInt32LE(4);
    broken.fill(0xff, 16, 16 + 4 * 40);
    expect(() => native.decode(broken, MAX_CHUNK_BYTES, undefined, { start: nbytes / 2, end: nbytes })).toThrow(/c-blosc could not decode the chunk \(error -?\d+\)/);
  });

  it('through zarrita: a chunk asked for some planes has them as a whole decode has them, and skips the rest, in Zarr v2 and v3 alike', async () => {
    const kinds: string[] = [];
    for (const v of variants.variants.filter((x) => x.kind !== 'v3-sharded' && x.name === 'zstd-shuffle-uint16-blocks4k')) {
      kinds.push(v.kind);
      const { whole, plane1 } = await wholeAndPlane1(v);
      const n = 256 * 192;
      expect(Array.from(plane1.data as Uint16Array).slice(n)).toEqual(Array.from(whole.data as Uint16Array).slice(n));
      // Plane 0 (several 4 KB blocks) was not decoded.
      expect((plane1.data as Uint16Array)[0]).toBe(0xcdcd);
    }
    expect(kinds).toEqual(['v2', 'v3']);
  });

  it('through zarrita: a chunk asked for some planes says which planes its decode wrote (whole Blosc blocks), and holds them as a whole decode does', async () => {
    const seen: string[] = [];
    for (const v of variants.variants.filter((x) => x.kind !== 'v3-sharded')) {
      const { whole, plane1 } = await wholeAndPlane1(v);
      const decoded = plane1.decodedPlanes!;
      expect({ v: v.name, from: decoded.from <= 1, to: decoded.to }).toEqual({ v: v.name, from: true, to: 1 });
      const n = 256 * 192 * (whole.data as Uint16Array).BYTES_PER_ELEMENT;
      const bytes = (c: typeof whole) => Buffer.from((c.data as Uint8Array).buffer, (c.data as Uint8Array).byteOffset, c.data.byteLength);
      expect(Buffer.compare(bytes(plane1).subarray(decoded.from * n, 2 * n), bytes(whole).subarray(decoded.from * n, 2 * n))).toBe(0);
      seen.push(`${v.name}: ${decoded.from}-${decoded.to}`);
    }
    // 4 KB blocks: plane 1 alone; the default blocks of a 2-plane chunk: both planes, for one decode.
    expect(seen).toContain('zstd-shuffle-uint16-blocks4k: 1-1');
    expect(seen).toContain('lz4-shuffle-uint16: 0-1');
  });

  it('zarrita used c-blosc (one report line, codec "c-blosc"), not numcodecs', async () => {
    await readWhole(zarritaLibrary, variants.variants[0]!);
    expect(reported).toEqual([{ level: 'info', fields: { chunks: 'Blosc', codec: 'c-blosc', implementation: native.description } }]);
  });

  it('a truncated, a non-Blosc and a corrupted chunk: a clear error, never zeros', () => {
    const file = chunkFiles(join(variants.dir, 'v2', 'zstd-shuffle-uint16'))[0]!;
    const good = new Uint8Array(readFileSync(file));
    expect(() => native.decode(good.subarray(0, good.byteLength - 100), MAX_CHUNK_BYTES)).toThrow(/header declares \d+ compressed bytes, the chunk has \d+ \(truncated/);
    expect(() => native.decode(new Uint8Array(Buffer.from('not a blosc chunk at all')), MAX_CHUNK_BYTES)).toThrow(/not a whole Blosc chunk/);
    expect(() => native.decode(new Uint8Array(8), MAX_CHUNK_BYTES)).toThrow(/not a Blosc chunk: 8 bytes/);
    // The block offsets after the header pointing past the end: c-blosc refuses it.
    const broken = good.slice();
    broken.fill(0xff, 16, 24);
    expect(() => native.decode(broken, MAX_CHUNK_BYTES)).toThrow(/c-blosc could not decode the chunk \(error -?\d+\)/);
  });

  it('a header declaring more decoded bytes than the chunk can hold is refused before anything is allocated', () => {
    const file = chunkFiles(join(variants.dir, 'v2', 'zstd-shuffle-uint16'))[0]!;
    const good = new Uint8Array(readFileSync(file));
    const declared = Buffer.from(good.buffer, good.byteOffset, good.byteLength).readUInt32LE(4);
    expect(native.decode(good, declared).byteLength).toBe(declared);
    expect(() => native.decode(good, declared - 1)).toThrow(`the chunk's Blosc header declares ${declared} decoded bytes, more than its ${declared - 1}`);
  });

  it('a truncated chunk read through zarrita: the chunk is named as corrupt, with the reason', async () => {
    const v = variants.variants.find((x) => x.kind === 'v2' && x.name === 'lz4-shuffle-uint16')!;
    const base = new ObjectStoreReadable(new LocalObjectStore(join(variants.dir, 'v2')), `${v.name}/`);
    const truncating = {
      async get(key: `/${string}`) {
        const body = await base.get(key);
        return key === '/0/0/0' ? body?.subarray(0, 1000) : body;
      },
      getRange: base.getRange.bind(base),
    };
    const array = await zarritaLibrary.openArray(truncating, '', 2);
    await expect(array.getChunk([0, 0, 0])).rejects.toThrow(/chunk 0\.0\.0 of "" is corrupt: not a whole Blosc chunk: its header declares \d+ compressed bytes, the chunk has 1000/);
    expect((await array.getChunk([0, 0, 1])).data.byteLength).toBe(2 * 256 * 192 * 2);
  });
});

describe('without libblosc or koffi', () => {
  it('in a process that allows code generation, Blosc chunks are decoded by numcodecs, with one warning naming the reason', async () => {
    const warned: Record<string, unknown>[] = [];
    await jest.isolateModulesAsync(async () => {
      jest.doMock('koffi', () => {
        throw new Error('koffi: no binary for this platform');
      });
      const zarr = await import('@tilefarm/zarr');
      zarr.reportZarrCodecsTo({ info: () => {}, warn: (fields) => warned.push(fields), error: (fields) => warned.push(fields) });
      for (const name of ['lz4-shuffle-uint16', 'zstd-bitshuffle-uint16']) {
        const v = variants.variants.find((x) => x.kind === 'v2' && x.name === name)!;
        expect(Buffer.compare(await readWhole(zarr.zarritaLibrary, v), readFileSync(join(variants.dir, 'v2', `${v.name}.raw`)))).toBe(0);
      }
    });
    expect(warned).toEqual([{ chunks: 'Blosc', codec: 'numcodecs', reason: 'koffi: no binary for this platform' }]);
  });
});
