import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';
import sharp from 'sharp';
import type { Page, Response } from 'playwright-core';
import { TestSystem } from '../support/system';
import { launchChromium, servePageFromAnotherOrigin, type PageFiles, type PageServer, type RunningBrowser } from './browser';

// Issue 12: the real client libraries from npm (OpenSeadragon 6, OpenLayers 10) in Chromium, on a
// page served from another origin, load a tilefarm dataset through IIIF Image API 3.0 and Deep
// Zoom; a CATMAID-style page builds tile URLs the way CATMAID's tile-source.js does. Pixels are
// read back from the page and compared with tilefarm's own lossless renders of the same area.

const ROOT = resolve(__dirname, '../..');
// 1200x900 at 256 px: stored levels 0..3 (1200, 600, 300, 150 wide).
const DATASET = { id: 'clients-cells', width: 1200, height: 900, sizeZ: 2, tileSize: 256 as const };

interface Patch {
  width: number;
  height: number;
  rgb: number[];
}

/** Mean absolute difference over RGB between a page patch and a reference image. */
function meanDiff(a: Patch, b: Patch): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.rgb.length; i++) sum += Math.abs(a.rgb[i]! - b.rgb[i]!);
  return sum / a.rgb.length;
}

function lit(p: Patch): number {
  let n = 0;
  for (let i = 0; i < p.rgb.length; i += 3) if (Math.max(p.rgb[i]!, p.rgb[i + 1]!, p.rgb[i + 2]!) > 24) n++;
  return n;
}

/** Reads a patch of the largest canvas under #view, as RGB. */
async function canvasPatch(page: Page, x: number, y: number, w: number, h: number): Promise<Patch> {
  return page.evaluate(
    ([x, y, w, h]) => {
      const canvas = [...document.querySelectorAll<HTMLCanvasElement>('#view canvas')].sort((a, b) => b.width * b.height - a.width * a.height)[0]!;
      const data = canvas.getContext('2d')!.getImageData(x!, y!, w!, h!).data;
      const rgb: number[] = [];
      for (let i = 0; i < data.length; i += 4) rgb.push(data[i]!, data[i + 1]!, data[i + 2]!);
      return { width: w!, height: h!, rgb };
    },
    [x, y, w, h],
  );
}

describe('real viewer clients in Chromium against tilefarm', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let pageServer: PageServer;
  const requests: { url: string; status: number }[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 2, datasets: [DATASET] });
    // OpenLayers is ES modules: bundled once for the page with esbuild.
    const ol = await build({
      stdin: {
        contents: "export { default as Map } from 'ol/Map.js'; export { default as View } from 'ol/View.js'; export { default as TileLayer } from 'ol/layer/Tile.js'; export { default as IIIF } from 'ol/source/IIIF.js'; export { default as IIIFInfo } from 'ol/format/IIIFInfo.js';",
        resolveDir: ROOT,
      },
      bundle: true,
      format: 'iife',
      globalName: 'ol',
      write: false,
      logLevel: 'silent',
    });
    const files: PageFiles = {
      '/osd.js': ['text/javascript', readFileSync(resolve(ROOT, 'node_modules/openseadragon/build/openseadragon/openseadragon.min.js'))],
      '/ol.js': ['text/javascript', Buffer.from(ol.outputFiles[0]!.contents)],
      '/page.html': ['text/html', '<!doctype html><html><body style="margin:0"><div id="view" style="width:640px;height:480px;background:#000"></div><script src="/osd.js"></script><script src="/ol.js"></script></body></html>'],
    };
    pageServer = await servePageFromAnotherOrigin(files);
  }, 420_000);

  afterAll(async () => {
    await chromium?.close();
    await pageServer?.close();
    await system?.stop();
  }, 120_000);

  async function openPage(): Promise<Page> {
    const page = await chromium.browser.newPage({ viewport: { width: 640, height: 480 } });
    page.on('response', (r: Response) => {
      if (r.url().startsWith(system.apiUrl)) requests.push({ url: r.url(), status: r.status() });
    });
    page.on('requestfailed', (r) => errors.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${pageServer.origin}/page.html`);
    return page;
  }

  /** tilefarm's own lossless render of an image area (region render, PNG), as RGB. */
  async function reference(x: number, y: number, w: number, h: number): Promise<Patch> {
    const res = await fetch(`${system.apiUrl}/iiif/3/${DATASET.id}/${x},${y},${w},${h}/max/0/default.png`);
    expect(res.status).toBe(200);
    const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, rgb: [...data] };
  }

  /** Centres of the two busiest 128-px cells of the image (from the coarsest level), far apart: places worth comparing. */
  async function busySpots(): Promise<[number, number][]> {
    const res = await fetch(`${system.apiUrl}/iiif/3/${DATASET.id}/full/150,113/0/default.png`);
    const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    const cells: { x: number; y: number; lit: number }[] = [];
    for (let cy = 1; cy < Math.floor(info.height / 16) - 1; cy++) {
      for (let cx = 1; cx < Math.floor(info.width / 16) - 1; cx++) {
        let n = 0;
        for (let y = cy * 16; y < cy * 16 + 16; y++) for (let x = cx * 16; x < cx * 16 + 16; x++) if (Math.max(data[(y * info.width + x) * 3]!, data[(y * info.width + x) * 3 + 1]!, data[(y * info.width + x) * 3 + 2]!) > 24) n++;
        cells.push({ x: cx * 128 + 64, y: cy * 128 + 64, lit: n });
      }
    }
    cells.sort((a, b) => b.lit - a.lit);
    const first = cells[0]!;
    const second = cells.find((c) => Math.abs(c.x - first.x) + Math.abs(c.y - first.y) >= 600) ?? cells[1]!;
    return [[first.x, first.y], [second.x, second.y]];
  }

  /** OpenSeadragon: open, wait until every tile on screen is drawn; then at 1:1 zoom at an image point. */
  async function openSeadragon(page: Page, tileSource: string): Promise<void> {
    await page.evaluate((src) => {
      const w = window as unknown as { OpenSeadragon: any; viewer: any };
      w.viewer = w.OpenSeadragon({ element: document.getElementById('view'), tileSources: src, crossOriginPolicy: 'Anonymous', drawer: 'canvas', animationTime: 0, blendTime: 0, showNavigationControl: false, imageSmoothingEnabled: false });
    }, tileSource);
    await page.waitForFunction(() => (window as any).viewer.world.getItemCount() === 1 && (window as any).viewer.world.getItemAt(0).getFullyLoaded(), undefined, { timeout: 60_000, polling: 100 });
  }

  async function osdZoomTo(page: Page, x: number, y: number): Promise<void> {
    await page.evaluate(
      ([x, y]) => {
        const v = (window as any).viewer;
        const OSD = (window as any).OpenSeadragon;
        v.viewport.zoomTo(v.viewport.imageToViewportZoom(1), undefined, true);
        v.viewport.panTo(v.viewport.imageToViewportCoordinates(new OSD.Point(x, y)), true);
      },
      [x, y],
    );
    await page.waitForTimeout(300);
    await page.waitForFunction(() => (window as any).viewer.world.getItemAt(0).getFullyLoaded(), undefined, { timeout: 60_000, polling: 100 });
  }

  /** Image coordinates at canvas pixel (cx, cy) of the OpenSeadragon view. */
  async function osdImageAt(page: Page, cx: number, cy: number): Promise<{ x: number; y: number }> {
    return page.evaluate(
      ([cx, cy]) => {
        const v = (window as any).viewer;
        const p = v.viewport.viewerElementToImageCoordinates(new (window as any).OpenSeadragon.Point(cx, cy));
        return { x: p.x, y: p.y };
      },
      [cx, cy],
    );
  }

  /** Checks the view at 1:1: a 64x64 patch at the centre equals tilefarm's own render of that area. */
  async function checkCentre(page: Page, imageAt: (cx: number, cy: number) => Promise<{ x: number; y: number }>, what: string) {
    const corner = await imageAt(288, 208);
    const x = Math.round(corner.x);
    const y = Math.round(corner.y);
    // Sub-pixel placement is not a difference worth failing on: at most half a pixel off.
    expect([what, Math.abs(corner.x - x) < 0.51, Math.abs(corner.y - y) < 0.51]).toEqual([what, true, true]);
    const shown = await canvasPatch(page, 288, 208, 64, 64);
    const ref = await reference(x, y, 64, 64);
    const diff = meanDiff(shown, ref);
    console.log(`CLIENT FIGURES ${what}: mean |page - reference| over 64x64 = ${diff.toFixed(2)} (0..255), lit ${lit(shown)}/${64 * 64}`);
    expect(lit(ref)).toBeGreaterThan(50); // an area with structure, so the comparison means something
    expect(diff).toBeLessThan(8);
  }

  function levelsFetched(urls: string[], parse: (u: string) => number | undefined): number[] {
    return [...new Set(urls.map(parse).filter((l): l is number => l !== undefined))].sort();
  }

  it('OpenSeadragon 6 + IIIF info.json: home view, then zoomed in and panned; every request 200; pixels equal the render', async () => {
    requests.length = 0;
    const page = await openPage();
    await openSeadragon(page, `${system.apiUrl}/iiif/3/${DATASET.id}/info.json`);
    const home = await canvasPatch(page, 0, 0, 640, 480);
    expect(lit(home)).toBeGreaterThan(10_000);
    const [a, b] = await busySpots();
    await osdZoomTo(page, a![0], a![1]);
    await checkCentre(page, (cx, cy) => osdImageAt(page, cx, cy), 'OpenSeadragon IIIF');
    await osdZoomTo(page, b![0], b![1]); // pan
    await checkCentre(page, (cx, cy) => osdImageAt(page, cx, cy), 'OpenSeadragon IIIF after pan');
    const tiles = requests.filter((r) => !r.url.endsWith('info.json'));
    // Scale of each IIIF request: region width / size width (2^level).
    const scales = levelsFetched(tiles.map((r) => r.url), (u) => {
      const m = /\/iiif\/3\/[^/]+\/([^/]+)\/([^/]+)\/0\/default\.jpg$/.exec(u);
      if (!m) return undefined;
      const rw = m[1] === 'full' ? DATASET.width : Number(m[1]!.split(',')[2]);
      return Math.round(Math.log2(rw / Number(m[2]!.split(',')[0])));
    });
    console.log(`CLIENT FIGURES OpenSeadragon IIIF: ${tiles.length} tile requests over levels ${scales.join(',')}`);
    expect(scales.length).toBeGreaterThanOrEqual(2);
    expect(scales).toContain(0);
    expect(requests.filter((r) => r.status !== 200)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 420_000);

  it('OpenSeadragon + Deep Zoom (.dzi): every request 200; pixels equal the render', async () => {
    requests.length = 0;
    const page = await openPage();
    await openSeadragon(page, `${system.apiUrl}/dzi/${DATASET.id}.dzi`);
    expect(lit(await canvasPatch(page, 0, 0, 640, 480))).toBeGreaterThan(10_000);
    const [spot] = await busySpots();
    await osdZoomTo(page, spot![0], spot![1]);
    await checkCentre(page, (cx, cy) => osdImageAt(page, cx, cy), 'OpenSeadragon DZI');
    const levels = levelsFetched(requests.map((r) => r.url), (u) => {
      const m = /_files\/(\d+)\//.exec(u);
      return m ? Number(m[1]) : undefined;
    });
    console.log(`CLIENT FIGURES OpenSeadragon DZI: ${requests.length} requests over DZI levels ${levels.join(',')}`);
    expect(levels).toContain(11); // full resolution of 1200 px
    expect(levels.length).toBeGreaterThanOrEqual(2);
    expect(requests.filter((r) => r.status !== 200)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 420_000);

  it('OpenLayers ol/source/IIIF from IIIFInfo: fit, then zoomed to 1:1 and panned; every request 200; pixels equal the render', async () => {
    requests.length = 0;
    const page = await openPage();
    await page.evaluate(async (infoUrl) => {
      const w = window as any;
      const info = await (await fetch(infoUrl)).json();
      const options = new w.ol.IIIFInfo(info).getTileSourceOptions();
      options.crossOrigin = 'anonymous';
      const source = new w.ol.IIIF(options);
      const grid = source.getTileGrid();
      w.view = new w.ol.View({ resolutions: grid.getResolutions(), extent: grid.getExtent(), constrainOnlyCenter: true });
      w.map = new w.ol.Map({ target: 'view', layers: [new w.ol.TileLayer({ source })], view: w.view, controls: [], interactions: [] });
      w.view.fit(grid.getExtent());
      w.rendered = false;
      w.map.once('rendercomplete', () => (w.rendered = true));
    }, `${system.apiUrl}/iiif/3/${DATASET.id}/info.json`);
    await page.waitForFunction(() => (window as any).rendered === true, undefined, { timeout: 60_000, polling: 100 });
    expect(lit(await canvasPatch(page, 0, 0, 640, 480))).toBeGreaterThan(10_000);
    const olImageAt = (cx: number, cy: number) => page.evaluate(([cx, cy]) => {
      const c = (window as any).map.getCoordinateFromPixel([cx, cy]);
      return { x: c[0], y: -c[1] };
    }, [cx, cy]);
    const spots = await busySpots();
    for (const [[x, y], what] of [[spots[0]!, 'OpenLayers IIIF'], [spots[1]!, 'OpenLayers IIIF after pan']] as const) {
      await page.evaluate(([x, y]) => {
        const w = window as any;
        w.rendered = false;
        w.view.setResolution(1);
        // Centre so that image point (x, y) sits at canvas pixel (320, 240), on whole pixels.
        w.view.setCenter([x!, -y!]);
        w.map.once('rendercomplete', () => (w.rendered = true));
      }, [x, y]);
      await page.waitForFunction(() => (window as any).rendered === true, undefined, { timeout: 60_000, polling: 100 });
      await checkCentre(page, olImageAt, what);
    }
    const scales = levelsFetched(requests.filter((r) => !r.url.endsWith('info.json')).map((r) => r.url), (u) => {
      const m = /\/iiif\/3\/[^/]+\/([^/]+)\/([^/]+)\/0\/default\.jpg$/.exec(u);
      if (!m) return undefined;
      const rw = m[1] === 'full' ? DATASET.width : Number(m[1]!.split(',')[2]);
      return Math.round(Math.log2(rw / Number(m[2]!.split(',')[0])));
    });
    console.log(`CLIENT FIGURES OpenLayers IIIF: ${requests.length} requests over levels ${scales.join(',')}`);
    expect(scales).toContain(0);
    expect(scales.length).toBeGreaterThanOrEqual(2);
    expect(requests.filter((r) => r.status !== 200)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 420_000);

  it('CATMAID: URLs built as tile-source.js builds them (types 1, 4, 5, 9, overview, t/z/), fetched with CORS from another origin', async () => {
    requests.length = 0;
    const page = await openPage();
    const base = `${system.apiUrl}/catmaid/${DATASET.id}/`;
    // The templates of catmaid/CATMAID django/applications/catmaid/static/js/tile-source.js (commit 027c17a6),
    // written out here: getTileBaseName puts the slice position in reverse order ([z] → "z/", [z, t] → "t/z/").
    const shown = await page.evaluate(async (base) => {
      const baseName = (pos: number[]) => pos.slice().reverse().map((p) => `${p}/`).join('');
      const type1 = (pos: number[], col: number, row: number, zoom: number, ext: string) => `${base}${baseName(pos)}${row}_${col}_${zoom}.${ext}`;
      const type4 = (pos: number[], col: number, row: number, zoom: number, ext: string) => `${base}${baseName(pos)}${zoom}/${row}_${col}.${ext}`;
      const type5 = (pos: number[], col: number, row: number, zoom: number, ext: string) => `${base}${zoom}/${baseName(pos)}${row}/${col}.${ext}`;
      const type9 = (pos: number[], col: number, row: number, zoom: number, ext: string, s: Record<string, string>) => {
        const params: string[] = [];
        for (const k of ['color', 'min', 'max', 'gamma', 'quality']) if (s[k]) params.push(`${k}=${s[k]}`);
        return type1(pos, col, row, zoom, ext) + (params.length ? `?${params.join('&')}` : '');
      };
      const overview14 = (pos: number[], ext: string) => `${base}${pos[0]}/small.${ext}`;
      const overview5 = (pos: number[], ext: string) => `${base}small/${pos[0]}.${ext}`;
      // What CATMAID's canary and WebGL layers do: fetch with CORS, want image/*, decode.
      const load = async (url: string) => {
        const r = await fetch(new Request(url, { mode: 'cors', credentials: 'same-origin' }));
        const type = r.headers.get('content-type') ?? '';
        const bmp = await createImageBitmap(await r.blob());
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const g = c.getContext('2d')!;
        g.drawImage(bmp, 0, 0);
        const d = g.getImageData(0, 0, bmp.width, bmp.height).data;
        const rgb: number[] = [];
        for (let i = 0; i < d.length; i += 4) rgb.push(d[i]!, d[i + 1]!, d[i + 2]!);
        return { url, status: r.status, type, width: bmp.width, height: bmp.height, rgb };
      };
      const settings = { color: 'red,blue', min: '150,120', max: '1200,900' };
      return {
        t1: await load(type1([1], 2, 1, 0, 'png')),
        t4: await load(type4([1], 2, 1, 0, 'png')),
        t5: await load(type5([1], 2, 1, 0, 'png')),
        tz: await load(type1([1, 0], 2, 1, 0, 'png')),
        edge0: await load(type1([1], 4, 3, 0, 'png')),
        edge1: await load(type4([1], 2, 1, 1, 'png')),
        small: await load(overview14([1], 'png')),
        small5: await load(overview5([1], 'png')),
        t9: await load(type9([1], 3, 2, 0, 'png', settings)),
        img: await new Promise<boolean>((resolve) => {
          const i = new Image();
          i.onload = () => resolve(true);
          i.onerror = () => resolve(false);
          i.src = type1([0], 0, 0, 0, 'jpg');
        }),
      };
    }, base);
    for (const r of [shown.t1, shown.t4, shown.t5, shown.tz, shown.edge0, shown.edge1, shown.small, shown.small5, shown.t9]) {
      expect([r.url, r.status, r.type.startsWith('image/')]).toEqual([r.url, 200, true]);
    }
    expect(shown.img).toBe(true);
    // Types 1, 4, 5 and the t/z/ form: one tile, the same pixels; full size.
    expect([shown.t1.width, shown.t1.height]).toEqual([256, 256]);
    for (const r of [shown.t4, shown.t5, shown.tz]) expect(r.rgb).toEqual(shown.t1.rgb);
    const crop = (p: Patch, w: number, h: number): Patch => ({ width: w, height: h, rgb: Array.from({ length: h }, (_, y) => p.rgb.slice(y * p.width * 3, (y * p.width + w) * 3)).flat() });
    // Edge tiles: padded to 256x256 with black; the picture part equals the render of that area.
    for (const [r, rect, size] of [[shown.edge0, [1024, 768, 176, 132], [176, 132]], [shown.edge1, [1024, 512, 176, 388], [88, 194]]] as const) {
      expect([r.width, r.height]).toEqual([256, 256]);
      const res = await fetch(`${system.apiUrl}/iiif/3/${DATASET.id}~z1/${rect.join(',')}/${size.join(',')}/0/default.png`);
      const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
      expect(meanDiff(crop(r, size[0], size[1]), { width: info.width, height: info.height, rgb: [...data] })).toBeLessThan(1);
      let outside = 0;
      for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) if (x >= size[0] || y >= size[1]) outside += r.rgb[(y * 256 + x) * 3]! + r.rgb[(y * 256 + x) * 3 + 1]! + r.rgb[(y * 256 + x) * 3 + 2]!;
      expect(outside).toBe(0);
    }
    // Overview: the whole plane at the first 2x step that fits one tile (1200x900 / 8), both spellings.
    expect([shown.small.width, shown.small.height]).toEqual([150, 113]);
    expect(shown.small5.rgb).toEqual(shown.small.rgb);
    // Type 9, two channels' colours and windows edited: the pixels of the equivalent POSTed spec.
    const ds = (await (await fetch(`${system.apiUrl}/v1/datasets/${DATASET.id}`)).json()) as { channels: Array<{ color: string; window: [number, number] }> };
    const spec = { channels: [{ index: 0, color: '#ff0000', window: [150, 1200] }, { index: 1, color: '#0000ff', window: [120, 900] }, { index: 2, color: ds.channels[2]!.color, window: ds.channels[2]!.window }], format: 'png' };
    const posted = (await (await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })).json()) as { id: string };
    const ref = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${posted.id}/0/1/0/3/2.png`);
    const { data } = await sharp(Buffer.from(await ref.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect(shown.t9.rgb).toEqual([...data]);
    expect(lit(shown.t9)).toBeGreaterThan(100);
    expect(requests.filter((r) => r.status !== 200)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 420_000);
});
