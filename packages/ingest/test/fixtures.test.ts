import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { RenderSpec, type DatasetManifest } from '@tilefarm/contracts';
import { WrittenBytes, readSourceTile } from '@tilefarm/datasets';
import { createSharpTileRenderer } from '@tilefarm/render/encoder';
import { finishIngest, ingestFile, ingestPlane, planIngest } from '@tilefarm/ingest';
import { FIXTURES, everyOther, firstDifference, readBackPlane, tempCatalog, type TempCatalog } from './support/read-back';

const CELLS = join(FIXTURES, 'cells-3c-10z.ome.tif');
const PYRAMID = join(FIXTURES, 'pyramid-4c-3z.ome.tif');

/** A page read by libvips (sharp): an independent reader to compare ours against. */
async function sharpPage(file: string, page: number, subifd = -1): Promise<Uint16Array> {
  const { data } = await sharp(file, { page, subifd }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
}

function channelRange(stats: { c: number; min: number; max: number }[], c: number): [number, number] {
  const mine = stats.filter((p) => p.c === c);
  return [Math.min(...mine.map((p) => p.min)), Math.max(...mine.map((p) => p.max))];
}

describe('shared fixtures', () => {
  it('finds the fixtures beside the repository', () => {
    expect(existsSync(CELLS)).toBe(true);
    expect(existsSync(PYRAMID)).toBe(true);
  });

  describe('cells-3c-10z (plain multi-page, deflate strips)', () => {
    let tc: TempCatalog;
    let m: DatasetManifest;
    beforeAll(async () => {
      tc = tempCatalog();
      m = await ingestFile({ path: CELLS, id: 'cells', catalog: tc.catalog });
    });
    afterAll(() => tc.cleanup());

    it('describes the file from its OME-XML', async () => {
      expect(m).toMatchObject({ id: 'cells', version: 1, width: 1000, height: 800, sizeZ: 10, sizeT: 1, dtype: 'uint16', tileSize: 256, levels: 3 });
      expect(m.channels.map((c) => c.label)).toEqual(['DAPI', 'GFP', 'mCherry']);
      expect(m.physicalSize).toEqual({ x: 0.325, y: 0.325, z: 1, unit: 'µm' });
      expect((await tc.catalog.find('cells'))?.version).toBe(1);
    });

    it('keeps the known pixel and per-channel ranges', async () => {
      const tile = await readSourceTile(tc.store, 'cells', 1, { level: 0, t: 0, z: 1, c: 0, x: 1, y: 0 });
      expect(tile.data[123 * tile.width + (456 - 256)]).toBe(84);
      const stats = (await tc.catalog.getStats('cells', 1))!;
      expect(stats.planes).toHaveLength(30);
      expect(channelRange(stats.planes, 0)).toEqual([51, 5752]);
      expect(channelRange(stats.planes, 1)).toEqual([56, 3561]);
      expect(channelRange(stats.planes, 2)).toEqual([49, 4061]);
      for (const ch of m.channels) expect(ch.window[0]).toBeLessThan(ch.window[1]);
    });

    it('stores pixels equal to libvips reading the page (DimensionOrder XYCZT: page = z*3 + c)', async () => {
      for (const [z, c] of [[0, 0], [1, 2], [9, 1]] as const) {
        const ours = await readBackPlane(tc.store, m, 0, c, z);
        expect(firstDifference(ours.data, await sharpPage(CELLS, z * 3 + c))).toBe(-1);
        // Computed reduced levels are every other pixel of level 0.
        for (const level of [1, 2]) expect(firstDifference((await readBackPlane(tc.store, m, level, c, z)).data, everyOther(ours, level))).toBe(-1);
      }
    });

    it('pooled level-0 pixels give the README percentiles (tiles hold all the data)', async () => {
      const counts = new Uint32Array(65536);
      let n = 0;
      for (let z = 0; z < 10; z++) {
        const { data } = await readBackPlane(tc.store, m, 0, 0, z);
        for (const v of data) counts[v]!++;
        n += data.length;
      }
      const pct = (p: number) => {
        const rank = p * (n - 1);
        let seen = 0;
        for (let v = 0; v < counts.length; v++) {
          seen += counts[v]!;
          if (seen > rank) return v;
        }
        return -1;
      };
      expect(Math.abs(pct(0.02) - 85)).toBeLessThanOrEqual(1);
      expect(Math.abs(pct(0.98) - 1736)).toBeLessThanOrEqual(1);
    });

    it('renders a 1:1 gray tile whose pixels are the source values scaled by the window', async () => {
      const renderer = createSharpTileRenderer();
      const spec = RenderSpec.parse({ channels: [{ index: 0, color: '#ffffff', window: [0, 65535] }], format: 'png' });
      const out = await renderer.render({
        manifest: m,
        stats: await tc.catalog.getStats('cells', 1),
        spec,
        tile: { level: 0, z: 1, t: 0, x: 1, y: 0, format: 'png' },
        readSource: (c, z, t) => readSourceTile(tc.store, 'cells', 1, { level: 0, t, z, c, x: 1, y: 0 }),
      });
      const { data, info } = await sharp(out.body).raw().toBuffer({ resolveWithObject: true });
      const source = await sharpPage(CELLS, 3); // z=1, c=0
      let mismatches = 0;
      for (let y = 0; y < info.height; y++) {
        for (let x = 0; x < info.width; x++) {
          const expected = Math.round(source[y * 1000 + 256 + x]! / 257);
          if (data[(y * info.width + x) * info.channels] !== expected) mismatches++;
        }
      }
      expect([info.width, info.height]).toEqual([256, 256]);
      expect(mismatches).toBe(0);
    });
  });

  describe('pyramid-4c-3z (BigTIFF, tiled, SubIFD levels)', () => {
    let tc: TempCatalog;
    let m: DatasetManifest;
    beforeAll(async () => {
      tc = tempCatalog();
      m = await ingestFile({ path: PYRAMID, id: 'pyramid', catalog: tc.catalog });
    });
    afterAll(() => tc.cleanup());

    it('uses its 3 stored levels and computes a 4th so the top fits one tile', () => {
      expect(m).toMatchObject({ width: 1300, height: 900, sizeZ: 3, levels: 4, dtype: 'uint16' });
      expect(m.channels.map((c) => c.label)).toEqual(['DAPI', 'GFP', 'mCherry', 'Cy5']);
    });

    it('keeps the known pixel and ranges', async () => {
      const tile = await readSourceTile(tc.store, 'pyramid', 1, { level: 0, t: 0, z: 1, c: 0, x: 1, y: 0 });
      expect(tile.data[123 * tile.width + (456 - 256)]).toBe(211);
      const stats = (await tc.catalog.getStats('pyramid', 1))!;
      expect([0, 1, 2, 3].map((c) => channelRange(stats.planes, c))).toEqual([[58, 4632], [56, 3450], [53, 5174], [58, 1745]]);
    });

    it('stores the file’s own reduced levels (equal to every other pixel of level 0) and the computed one', async () => {
      const z = 1;
      for (const c of [0, 3]) {
        const page = z * 4 + c;
        const level0 = await readBackPlane(tc.store, m, 0, c, z);
        expect(firstDifference(level0.data, await sharpPage(PYRAMID, page))).toBe(-1);
        for (const level of [1, 2]) {
          const stored = await readBackPlane(tc.store, m, level, c, z);
          expect(firstDifference(stored.data, await sharpPage(PYRAMID, page, level - 1))).toBe(-1);
          expect(firstDifference(stored.data, everyOther(level0, level))).toBe(-1);
        }
        const top = await readBackPlane(tc.store, m, 3, c, z);
        expect([top.width, top.height]).toEqual([163, 113]);
        expect(firstDifference(top.data, everyOther(level0, 3))).toBe(-1);
      }
    });
  });

  it('the split API (plan, units in any order, finish) gives the same dataset as ingestFile', async () => {
    const tc = tempCatalog();
    try {
      const plan = await planIngest({ path: PYRAMID, id: 'split', catalog: tc.catalog });
      expect(plan.layout.units).toHaveLength(12);
      expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
      const stats = [];
      const written = new WrittenBytes(plan.quota);
      for (let i = plan.layout.units.length - 1; i >= 0; i--) stats.push(...(await ingestPlane(plan, i, { catalog: tc.catalog, written })));
      expect(await tc.catalog.find('split')).toBeUndefined();
      const m = await finishIngest(plan, stats, tc.catalog, written.total);
      expect(m.storedBytes).toBe(written.total);
      expect(m.levels).toBe(4);
      const tile = await readSourceTile(tc.store, 'split', 1, { level: 0, t: 0, z: 1, c: 0, x: 1, y: 0 });
      expect(tile.data[123 * tile.width + 200]).toBe(211);
    } finally {
      tc.cleanup();
    }
  });
});
