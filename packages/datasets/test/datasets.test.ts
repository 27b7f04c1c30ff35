import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import {
  DatasetCatalog,
  computePlaneStats,
  createSyntheticDataset,
  cutTile,
  decodeSourceTile,
  encodeSourceTile,
  encodeSourceTileAs,
  levelCountFor,
  sourceTileEncoding,
  readSourceTile,
  sourceTileKey,
  subsample2x,
  tileKey,
} from '@tilefarm/datasets';
import { levelGrid } from '@tilefarm/contracts';

describe('source tile codec', () => {
  it('round-trips uint8, uint16 and float32 exactly', () => {
    const u16 = Uint16Array.from({ length: 300 * 7 }, (_, i) => (i * 977) % 65536);
    const u8 = Uint8Array.from({ length: 5 * 3 }, (_, i) => i * 17);
    const f32 = Float32Array.from({ length: 4 }, (_, i) => i / 3 - 1);
    for (const tile of [
      { width: 300, height: 7, dtype: 'uint16' as const, data: u16 },
      { width: 5, height: 3, dtype: 'uint8' as const, data: u8 },
      { width: 2, height: 2, dtype: 'float32' as const, data: f32 },
    ]) {
      for (const encoded of [encodeSourceTile(tile), encodeSourceTileAs('raw-v1', tile), encodeSourceTileAs('raw-deflate-v1', tile, 6)]) {
        const back = decodeSourceTile(encoded);
        expect(back.width).toBe(tile.width);
        expect(back.dtype).toBe(tile.dtype);
        expect(Array.from(back.data)).toEqual(Array.from(tile.data));
      }
    }
  });

  it('tells the encoding by the header: raw-v1 is the samples as stored, raw-deflate-v1 tiles written before it still decode', () => {
    const tile = { width: 256, height: 2, dtype: 'uint16' as const, data: Uint16Array.from({ length: 512 }, (_, i) => i * 100) };
    const raw = encodeSourceTileAs('raw-v1', tile);
    expect(raw.length).toBe(16 + 1024);
    expect(raw.subarray(16).equals(Buffer.from(tile.data.buffer))).toBe(true);
    expect(sourceTileEncoding(raw)).toBe('raw-v1');
    // A raw-deflate-v1 tile as the first codec wrote it (byte 5 was reserved, 0).
    const old = encodeSourceTile(tile);
    expect(old[5]).toBe(0);
    expect(sourceTileEncoding(old)).toBe('raw-deflate-v1');
    expect(Array.from(decodeSourceTile(old).data)).toEqual(Array.from(tile.data));
    const unknown = Buffer.from(raw);
    unknown[5] = 9;
    expect(() => decodeSourceTile(unknown)).toThrow(/unknown body code 9/);
    expect(() => decodeSourceTile(raw.subarray(0, raw.length - 2))).toThrow(/tile body is 1022 bytes, expected 1024/);
  });

  it('rejects corrupt and truncated tiles with a clear error', () => {
    const good = encodeSourceTile({ width: 4, height: 4, dtype: 'uint16', data: new Uint16Array(16).fill(7) });
    expect(() => decodeSourceTile(Buffer.from('nope'))).toThrow(/not a raw-deflate-v1/);
    expect(() => decodeSourceTile(good.subarray(0, good.length - 3))).toThrow();
  });
});

describe('statistics', () => {
  it('matches a brute-force computation', () => {
    const data = Uint16Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 5000);
    const stats = computePlaneStats(data, 'uint16', 0, 0, 0);
    const sorted = Array.from(data).sort((a, b) => a - b);
    expect(stats.min).toBe(sorted[0]);
    expect(stats.max).toBe(sorted[sorted.length - 1]);
    expect(stats.percentiles['0.02']).toBe(sorted[Math.floor(0.02 * (sorted.length - 1))]);
    expect(stats.percentiles['0.98']).toBe(sorted[Math.floor(0.98 * (sorted.length - 1))]);
    expect(stats.histogram.counts.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(stats.mean).toBeCloseTo(sorted.reduce((a, b) => a + b, 0) / sorted.length, 6);
  });
});

describe('pyramid', () => {
  it('subsamples every other pixel and crops edge tiles', () => {
    const plane = { width: 5, height: 3, dtype: 'uint16' as const, data: Uint16Array.from({ length: 15 }, (_, i) => i) };
    const half = subsample2x(plane);
    expect([half.width, half.height]).toEqual([3, 2]);
    expect(Array.from(half.data)).toEqual([0, 2, 4, 10, 12, 14]);
    const edge = cutTile(plane, 4, 1, 0);
    expect([edge.width, edge.height]).toEqual([1, 3]);
    expect(Array.from(edge.data)).toEqual([4, 9, 14]);
    expect(levelCountFor(1300, 900, 256)).toBe(4);
  });
});

describe('tile keys', () => {
  it('are valid BullMQ job ids and differ by every address part', () => {
    const base = { level: 0, z: 1, t: 0, x: 2, y: 3, format: 'jpeg' as const };
    const key = tileKey('demo', 1, 's0123456789abcdef', base);
    expect(key).not.toContain(':');
    expect(key).toMatch(/^tiles\/[0-9a-f]{2}\/demo\/v1\/s0123456789abcdef-l0-z1-t0-x2-y3\.jpeg$/);
    const variants = [{ ...base, level: 1 }, { ...base, z: 2 }, { ...base, t: 1 }, { ...base, x: 3 }, { ...base, y: 4 }, { ...base, format: 'png' as const }];
    for (const v of variants) expect(tileKey('demo', 1, 's0123456789abcdef', v)).not.toBe(key);
    expect(tileKey('demo', 2, 's0123456789abcdef', base)).not.toBe(key);
  });
});

describe('DatasetCatalog with a synthetic dataset', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-ds-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('publishes a complete pyramid, stats and manifest, and bumps the version on re-create', async () => {
    const store = new LocalObjectStore(dir);
    const catalog = new DatasetCatalog(store, 0);
    expect(await catalog.find('syn')).toBeUndefined();
    const m = await createSyntheticDataset(catalog, { id: 'syn', width: 600, height: 300, sizeZ: 3, tileSize: 256 });
    expect(m.version).toBe(1);
    expect(m.sourceEncoding).toBe('raw-v1'); // the default writer, recorded in the manifest
    expect(sourceTileEncoding((await store.get(sourceTileKey('syn', 1, { level: 0, t: 0, z: 0, c: 0, x: 0, y: 0 })))!)).toBe('raw-v1');
    expect(m.levels).toBe(3);
    expect(m.channels.map((c) => c.label)).toEqual(['DAPI', 'GFP', 'mCherry']);
    const stats = await catalog.getStats('syn', 1);
    expect(stats?.planes).toHaveLength(3 * 3);
    for (let level = 0; level < m.levels; level++) {
      const { cols, rows } = levelGrid(m, level);
      const last = await readSourceTile(store, 'syn', 1, { level, t: 0, z: 2, c: 2, x: cols - 1, y: rows - 1 });
      expect(last.width).toBe(Math.ceil(m.width / 2 ** level) - (cols - 1) * 256);
    }
    // Slices differ: scrolling Z shows something new.
    const a = await readSourceTile(store, 'syn', 1, { level: 0, t: 0, z: 0, c: 0, x: 0, y: 0 });
    const b = await readSourceTile(store, 'syn', 1, { level: 0, t: 0, z: 2, c: 0, x: 0, y: 0 });
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(b.data.buffer))).not.toBe(0);
    // A catalog told to deflate writes (and records) raw-deflate-v1; both versions read the same way.
    const again = await createSyntheticDataset(new DatasetCatalog(store, 0, 'raw-deflate-v1'), { id: 'syn', width: 300, height: 200, sizeZ: 1 });
    expect(again.version).toBe(2);
    expect(again.sourceEncoding).toBe('raw-deflate-v1');
    expect(sourceTileEncoding((await store.get(sourceTileKey('syn', 2, { level: 0, t: 0, z: 0, c: 0, x: 0, y: 0 })))!)).toBe('raw-deflate-v1');
    expect((await readSourceTile(store, 'syn', 2, { level: 0, t: 0, z: 0, c: 1, x: 0, y: 0 })).width).toBe(256);
    expect((await catalog.get('syn')).version).toBe(2);
    expect((await catalog.list()).map((d) => d.id)).toEqual(['syn']);
  });

  it('answers dataset_not_found for ids outside the id grammar, without asking the store', async () => {
    const catalog = new DatasetCatalog(new LocalObjectStore(dir), 0);
    for (const id of ['ts~Zg-c ', 'Upper', 'a b', '../x', '']) {
      await expect(catalog.get(id)).rejects.toMatchObject({ code: 'dataset_not_found' });
      await expect(catalog.getVersion(id, 1)).rejects.toMatchObject({ code: 'dataset_not_found' });
    }
  });
});

describe('DatasetCatalog.deleteVersion when deletes fail for a moment', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-delete-version-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The local store, whose deletes of the keys `failing` picks throw (S3's InternalError, say). */
  function flakyStore(failing: (key: string, attempt: number) => boolean) {
    const store = new LocalObjectStore(dir);
    const attempts = new Map<string, number>();
    return new Proxy(store, {
      get(target, name, receiver) {
        if (name !== 'delete') return Reflect.get(target, name, receiver);
        return async (key: string) => {
          const attempt = (attempts.get(key) ?? 0) + 1;
          attempts.set(key, attempt);
          if (failing(key, attempt)) throw new Error(`InternalError deleting ${key}`);
          return target.delete(key);
        };
      },
    });
  }

  async function writeVersion(store: LocalObjectStore, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await store.put(`datasets/d/v2/src/0/0/0/0/${i}/0.tfs`, Buffer.from([i]));
  }

  it('deletes again what a pass could not: nothing is left, every key counted once', async () => {
    const store = flakyStore((key, attempt) => attempt === 1 && key.endsWith('3/0.tfs'));
    await writeVersion(store, 150);
    expect(await new DatasetCatalog(store).deleteVersion('d', 2)).toBe(150);
    const left: string[] = [];
    for await (const key of store.list('datasets/d/')) left.push(key);
    expect(left).toEqual([]);
  });

  it('gives up with the store\'s error on a delete that keeps failing', async () => {
    const store = flakyStore((key) => key.endsWith('/7/0.tfs'));
    await writeVersion(store, 10);
    await expect(new DatasetCatalog(store).deleteVersion('d', 2)).rejects.toThrow(/InternalError deleting .*\/7\/0\.tfs/);
  });
});
