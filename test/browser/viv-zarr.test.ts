import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { ingestFile } from '@tilefarm/ingest';
import { TestSystem } from '../support/system';
import { fixtureValue, isFixtureFill, zarrFixtures } from '../support/zarr-fixtures';
import { launchChromium, servePageFromAnotherOrigin, type PageFiles, type PageServer, type RunningBrowser } from './browser';

// Issue 13, "Out": Viv's own loader (@vivjs/loaders loadOmeZarr, the one Avivator and Vitessce
// use) in Chromium, on a page from another origin, reads tilefarm's /zarr/ view and gets the
// source file's raw values. Expected values are not read through our code: the shared OME-TIFF's
// known value (../shared/fixtures/README.md) and the Zarr fixture's known function (generate.py).

const ROOT = resolve(__dirname, '../..');
const SHARED = resolve(ROOT, '../shared/fixtures');
const fixtures = zarrFixtures();

interface Probe {
  level: number;
  t: number;
  c: number;
  z: number;
  /** Level pixel coordinates. */
  y: number;
  x: number;
}

interface VivAnswer {
  labels: string[];
  dtype: string;
  tileSize: number;
  shapes: number[][];
  channels: string[];
  values: { probe: Probe; tile: number; raster: number }[];
}

/** In the page: Viv opens the view, then reads each probe once through getTile and once through getRaster. */
async function readWithViv(page: Page, url: string, probes: Probe[]): Promise<VivAnswer> {
  return page.evaluate(
    async ([url, probes]) => {
      const viv = (window as unknown as { viv: typeof import('@vivjs/loaders') }).viv;
      const { data, metadata } = await viv.loadOmeZarr(url, { type: 'multiscales' });
      const source = data[0]!;
      const values: VivAnswer['values'] = [];
      const rasters = new Map<string, { data: ArrayLike<number>; width: number }>();
      for (const p of probes) {
        const level = data[p.level]!;
        const selection = { t: p.t, c: p.c, z: p.z };
        const tx = Math.floor(p.x / level.tileSize);
        const ty = Math.floor(p.y / level.tileSize);
        const tile = await level.getTile({ x: tx, y: ty, selection, signal: undefined as unknown as AbortSignal });
        const key = `${p.level}/${p.t}/${p.c}/${p.z}`;
        if (!rasters.has(key)) rasters.set(key, await level.getRaster({ selection }));
        const raster = rasters.get(key)!;
        values.push({
          probe: p,
          tile: tile.data[(p.y - ty * level.tileSize) * tile.width + (p.x - tx * level.tileSize)]!,
          raster: raster.data[p.y * raster.width + p.x]!,
        });
      }
      const omero = (metadata as { omero?: { channels: { label: string }[] } }).omero;
      return {
        labels: source.labels as string[],
        dtype: source.dtype,
        tileSize: source.tileSize,
        shapes: data.map((d) => d.shape),
        channels: omero?.channels.map((c) => c.label) ?? [],
        values,
      };
    },
    [url, probes] as const,
  );
}

describe("Viv's loadOmeZarr in Chromium reads the /zarr/ view", () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let pageServer: PageServer;
  const errors: string[] = [];
  const chunkEncodings: string[] = [];

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 1, gateways: 1, env: { INGEST_ROOT: fixtures.dir } });
    // Two sources: an ingested OME-TIFF (tilefarm's own tiles) and a linked OME-Zarr (read where it lies).
    await ingestFile({ path: join(SHARED, 'pyramid-4c-3z.ome.tif'), id: 'viv-tiff', catalog: system.catalog });
    expect(await system.registerDataset({ id: 'viv-zarr', source: 'cells-ngff04.zarr', mode: 'link' })).toMatchObject({ state: 'completed' });

    // Viv's loaders are ES modules: bundled for the page with esbuild, as an app would.
    const bundle = await build({ stdin: { contents: "export { loadOmeZarr } from '@vivjs/loaders';", resolveDir: ROOT }, bundle: true, format: 'iife', globalName: 'viv', write: false, logLevel: 'silent' });
    const files: PageFiles = {
      '/viv.js': ['text/javascript', bundle.outputFiles[0]!.contents],
      '/page.html': ['text/html', '<!doctype html><html><body><script src="/viv.js"></script></body></html>'],
    };
    pageServer = await servePageFromAnotherOrigin(files);
  }, 420_000);

  afterAll(async () => {
    await chromium?.close();
    await pageServer?.close();
    await system?.stop();
  }, 120_000);

  async function openPage(): Promise<Page> {
    const page = await chromium.browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (r) => errors.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
    // Chunk responses (level/t/c/z/y/x keys): what encoding they crossed the wire in.
    page.on('response', (r) => {
      if (/\/zarr\/[^/]+\.zarr\/\d+\/\d+\/\d+\/\d+\/\d+\/\d+$/.test(new URL(r.url()).pathname)) chunkEncodings.push(r.headers()['content-encoding'] ?? 'identity');
    });
    await page.goto(`${pageServer.origin}/page.html`);
    return page;
  }

  it('an ingested OME-TIFF: the fixture README known value, and levels that are 2x subsamples of level 0', async () => {
    const page = await openPage();
    // Level 0 at the README's known position, and positions whose level-1/2 samples are level-0
    // samples at (2y, 2x) / (4y, 4x) (the fixture's reduced levels are plain subsampling).
    const base: Probe[] = [{ level: 0, t: 0, c: 0, z: 1, y: 123, x: 456 }];
    const pairs: [Probe, Probe][] = [];
    for (const [level, c, z, y, x] of [[1, 0, 1, 61, 228], [1, 3, 2, 300, 500], [2, 2, 0, 200, 310], [2, 1, 1, 17, 5], [1, 1, 0, 449, 649]] as const) {
      const f = 2 ** level;
      pairs.push([{ level, t: 0, c, z, y, x }, { level: 0, t: 0, c, z, y: y * f, x: x * f }]);
    }
    const answer = await readWithViv(page, `${system.apiUrl}/zarr/viv-tiff.zarr`, [...base, ...pairs.flat()]);
    expect(answer).toMatchObject({ labels: ['t', 'c', 'z', 'y', 'x'], dtype: 'Uint16', tileSize: 256, channels: ['DAPI', 'GFP', 'mCherry', 'Cy5'] });
    // The file's three levels (ingest may add coarser ones of its own; those are not compared here).
    expect(answer.shapes.slice(0, 3)).toEqual([[1, 4, 3, 900, 1300], [1, 4, 3, 450, 650], [1, 4, 3, 225, 325]]);
    expect(answer.values[0]).toMatchObject({ tile: 211, raster: 211 });
    for (const v of answer.values) expect({ probe: v.probe, tile: v.tile }).toEqual({ probe: v.probe, tile: v.raster });
    for (let i = 0; i < pairs.length; i++) {
      const reduced = answer.values[1 + 2 * i]!;
      const full = answer.values[2 + 2 * i]!;
      expect({ probe: reduced.probe, value: reduced.tile }).toEqual({ probe: reduced.probe, value: full.tile });
    }
    // Values differ between probes: a view answering one constant would not pass.
    expect(new Set(answer.values.map((v) => v.tile)).size).toBeGreaterThan(4);
    await page.close();
    expect(errors).toEqual([]);
  }, 180_000);

  it('a linked OME-Zarr (Python zarr, Blosc, 200x300 chunks): the known function at every level, the fill-value region as 0', async () => {
    const page = await openPage();
    const probes: Probe[] = [];
    for (const [level, c, z, y, x] of [
      [0, 0, 0, 0, 0], [0, 1, 3, 345, 678], [0, 2, 5, 699, 899], [0, 2, 4, 150, 250], [0, 2, 3, 150, 250], [0, 0, 2, 255, 256],
      [1, 1, 1, 100, 333], [1, 2, 5, 349, 449], [2, 0, 4, 87, 112], [2, 2, 0, 10, 200], [3, 1, 5, 43, 56], [3, 0, 0, 0, 0],
    ] as const) probes.push({ level, t: 0, c, z, y, x });
    const answer = await readWithViv(page, `${system.apiUrl}/zarr/viv-zarr.zarr`, probes);
    expect(answer).toMatchObject({ labels: ['t', 'c', 'z', 'y', 'x'], dtype: 'Uint16', channels: ['DAPI', 'GFP', 'mCherry'] });
    expect(answer.shapes.map((s) => s.slice(3))).toEqual([[700, 900], [350, 450], [175, 225], [88, 113]]);
    for (const { probe: p, tile, raster } of answer.values) {
      const f = 2 ** p.level;
      const want = isFixtureFill('04', p.level, p.t, p.c, p.z, p.y * f, p.x * f) ? 0 : fixtureValue(p.t, p.c, p.z, p.y * f, p.x * f);
      expect({ probe: p, tile, raster }).toEqual({ probe: p, tile: want, raster: want });
    }
    // The fill-value probe (c=2, z=4 inside the missing chunk) was one of them.
    expect(answer.values[3]!.tile).toBe(0);
    // Chromium asked for gzip and Viv read the compressed chunks unchanged.
    expect(chunkEncodings.length).toBeGreaterThan(10);
    expect(new Set(chunkEncodings)).toEqual(new Set(['gzip']));
    await page.close();
    expect(errors).toEqual([]);
  }, 180_000);
});
