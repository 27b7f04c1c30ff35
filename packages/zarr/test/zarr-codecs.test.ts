import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportZarrCodecsTo, zarritaLibrary, type ChunkMemory } from '@tilefarm/zarr';
import { readWhole } from './whole-array';
import { codecVariantFixtures } from '../../../test/support/zarr-fixtures';

// Zarr arrays compressed with zstd, lz4, gzip and zlib, written by Python's zarr / numcodecs, read
// through zarritaLibrary (zstd by libzstd, lz4 by liblz4, gzip and zlib by node's zlib): every
// sample equal to what numpy wrote beside them.

const fixtures = codecVariantFixtures();
const reported: { level: string; fields: Record<string, unknown> }[] = [];
reportZarrCodecsTo({
  info: (fields) => reported.push({ level: 'info', fields }),
  warn: (fields) => reported.push({ level: 'warn', fields }),
  error: (fields) => reported.push({ level: 'error', fields }),
});

describe('zstd, lz4, gzip and zlib chunks through zarrita', () => {
  it.each(fixtures.variants.map((v) => [`${v.kind} ${v.name}`, v] as const))('%s: every chunk holds the samples numpy wrote', async (_, v) => {
    const expected = readFileSync(join(fixtures.dir, v.kind, `${v.name}.raw`));
    expect(Buffer.compare(await readWhole(zarritaLibrary, fixtures.dir, v), expected)).toBe(0);
  });

  it('zstd, lz4, gzip and zlib were decoded by libzstd, liblz4 and node\'s zlib (one report line each), not numcodecs or zarrita', () => {
    expect(reported).toEqual([
      { level: 'info', fields: { chunks: 'zstd', codec: 'libzstd', implementation: expect.stringMatching(/^libzstd 1\./) } },
      { level: 'info', fields: { chunks: 'lz4', codec: 'liblz4', implementation: expect.stringMatching(/^liblz4 1\./) } },
      { level: 'info', fields: { chunks: 'gzip', codec: 'node:zlib', implementation: `node:zlib ${process.versions.zlib} (gzip)` } },
      { level: 'info', fields: { chunks: 'zlib', codec: 'node:zlib', implementation: `node:zlib ${process.versions.zlib} (zlib)` } },
    ]);
  });

  it('with chunk memory (decodes into reused memory of any contents, compressed bytes given back once decoded): every zstd and lz4 variant still holds the samples numpy wrote', async () => {
    // Memory as dirty as reuse can leave it (0xCD), and memory given back overwritten at once (0xEE).
    const lent = new Set<ArrayBufferLike>();
    const decodedSizes = new Set([2 * 256 * 192, 2 * 256 * 192 * 2, 2 * 256 * 192 * 4]);
    let decodes = 0;
    let recycled = 0;
    const memory: ChunkMemory = {
      allocate(size) {
        const b = Buffer.allocUnsafeSlow(size).fill(0xcd);
        lent.add(b.buffer);
        if (decodedSizes.has(size)) decodes++;
        return b;
      },
      retire() {},
      bytesBehind: (view) => view.buffer.byteLength,
      recycle(view) {
        const buffer = view.byteOffset === 0 ? view.buffer : undefined;
        if (!buffer || !lent.delete(buffer)) return;
        new Uint8Array(buffer).fill(0xee);
        recycled++;
      },
    };
    for (const v of fixtures.variants.filter((x) => x.codec === 'zstd' || x.codec === 'lz4')) {
      const expected = readFileSync(join(fixtures.dir, v.kind, `${v.name}.raw`));
      expect({ variant: `${v.kind} ${v.name}`, equal: Buffer.compare(await readWhole(zarritaLibrary, fixtures.dir, v, memory), expected) === 0 }).toEqual({ variant: `${v.kind} ${v.name}`, equal: true });
    }
    // 10 arrays of 8 chunks, each decoded into lent memory; reads of 16 KB or more (readBuffer) given back once decoded.
    expect(decodes).toBe(80);
    expect(recycled).toBeGreaterThan(30);
  });

  it('a gzip bomb (64 MB of zeros) as a chunk: named as corrupt, with the reason, decoding stopped at the chunk\'s size', async () => {
    const v = fixtures.variants.find((x) => x.kind === 'v2' && x.name === 'gzip-5-uint16')!;
    const { ObjectStoreReadable } = await import('@tilefarm/zarr');
    const { LocalObjectStore } = await import('@tilefarm/storage');
    const { gzipSync } = await import('node:zlib');
    const base = new ObjectStoreReadable(new LocalObjectStore(join(fixtures.dir, 'v2')), `${v.name}/`);
    const bomb = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    const bombing = {
      get: async (key: `/${string}`) => (key === '/0/0/0' ? new Uint8Array(bomb.buffer, bomb.byteOffset, bomb.byteLength) : base.get(key)),
      getRange: base.getRange.bind(base),
    };
    const array = await zarritaLibrary.openArray(bombing, '', 2);
    await expect(array.getChunk([0, 0, 0])).rejects.toThrow(`chunk 0.0.0 of "" is corrupt: the chunk's gzip stream decodes to more than its ${2 * 256 * 192 * 2} bytes (chunk shape × sample size)`);
    expect((await array.getChunk([0, 0, 1])).data.byteLength).toBe(2 * 256 * 192 * 2);
  });

  it('a zstd chunk whose frame declares more than the chunk\'s samples: the chunk is named as corrupt, with the reason', async () => {
    const v = fixtures.variants.find((x) => x.kind === 'v3' && x.name === 'zstd-3-uint16')!;
    const { ObjectStoreReadable } = await import('@tilefarm/zarr');
    const { LocalObjectStore } = await import('@tilefarm/storage');
    const base = new ObjectStoreReadable(new LocalObjectStore(join(fixtures.dir, 'v3')), `${v.name}/`);
    const lying = {
      async get(key: `/${string}`) {
        const body = await base.get(key);
        if (key !== '/c/0/0/0' || !body) return body;
        const copy = Buffer.from(body);
        copy.writeUInt32LE(64 * 1024 * 1024, 5);
        return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
      },
      getRange: base.getRange.bind(base),
    };
    const array = await zarritaLibrary.openArray(lying, '', 3);
    await expect(array.getChunk([0, 0, 0])).rejects.toThrow(`chunk 0.0.0 of "" is corrupt: the chunk's zstd frame declares ${64 * 1024 * 1024} decoded bytes, more than its ${2 * 256 * 192 * 2} (chunk shape × sample size)`);
    expect((await array.getChunk([0, 0, 1])).data.byteLength).toBe(2 * 256 * 192 * 2);
  });
});
