import { readFileSync } from 'node:fs';
import type { Download, Page } from 'playwright-core';
import sharp from 'sharp';
import { TestSystem } from '../support/system';
import { launchChromium, type RunningBrowser } from './browser';

// Issue 14, export (the view as PNG; a region at full resolution) and the scale bar's "no physical size" state, in Chromium against real
// processes. The exported files are decoded here and checked against an independent reference:
// the server's own lossless PNG tiles of the same spec (the PNG of the view: sampled, ±1; the
// full-resolution region export: every pixel, ±1).

interface Geometry {
  originX: number;
  originY: number;
  scale: number;
  dpr: number;
  level: number;
}

const SPEC = { v: 1, channels: [{ index: 0, color: '#0080ff', window: [100, 2500] }, { index: 1, color: '#00ff00', window: [150, 1800] }, { index: 2, color: '#ff0000', window: [120, 3000], gamma: 1.4 }], format: 'png' };
const linkTo = (dataset: string, spec: unknown) => `#d=${dataset}&z=0&s=${Buffer.from(JSON.stringify(spec)).toString('base64url')}`;

async function decoded(download: Download): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(readFileSync((await download.path())!)).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

// Failed in 2 of many clean-clone CI runs, never alone: the viewer came back from the PNG test's link +
// reload showing its default spec instead of the link's, and the next test's fetch to the API then
// met a closed socket ("other side closed"). The first half is explained and fixed: a link whose spec
// registration failed once (a dropped connection, a 503) fell back to the defaults silently; the
// viewer now asks again (the last two tests make it happen). The test side's closed socket is not
// explained, so a failed test is still tried again, with the same assertions; a real regression
// fails every attempt.
jest.retryTimes(2, { logErrorsBeforeRetry: true });

describe('export and scale bar in the viewer', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let page: Page;
  let specId: string;
  const pageErrors: string[] = [];
  const tiles = new Map<string, { data: Buffer; width: number }>();

  /** The server's lossless tile (RGB) of SPEC: the independent reference. */
  async function serverTile(dataset: string, level: number, x: number, y: number): Promise<{ data: Buffer; width: number }> {
    const key = `${dataset}/${level}/${x}/${y}`;
    const known = tiles.get(key);
    if (known) return known;
    const res = await fetch(`${system.apiUrl}/v1/tiles/${dataset}/${specId}/${level}/0/0/${x}/${y}.png`);
    if (res.status !== 200) throw new Error(`tile ${key}: ${res.status}`);
    const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    const tile = { data, width: info.width };
    tiles.set(key, tile);
    return tile;
  }
  async function serverPixel(dataset: string, level: number, x: number, y: number): Promise<[number, number, number]> {
    const tile = await serverTile(dataset, level, Math.floor(x / 256), Math.floor(y / 256));
    const i = ((y % 256) * tile.width + (x % 256)) * 3;
    return [tile.data[i]!, tile.data[i + 1]!, tile.data[i + 2]!];
  }

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({
      workers: 2,
      datasets: [
        { id: 'demo', width: 1024, height: 768, sizeZ: 1 },
        { id: 'wide', width: 2600, height: 1800, sizeZ: 1, seed: 7 },
        { id: 'nophys', width: 600, height: 400, sizeZ: 1, physicalSize: null },
      ],
    });
    specId = ((await (await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SPEC) })).json()) as { id: string }).id;
    page = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 }, acceptDownloads: true });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 120_000);
  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  it('the scale bar says "no physical size", and draws no bar, for a file without one, at every zoom', async () => {
    await page.goto(`${system.apiUrl}/#d=nophys`);
    await page.waitForFunction(() => document.body.dataset.complete === 'true' && (document.body.dataset.shown ?? '').startsWith('nophys/'), null, { timeout: 60_000 });
    for (const zoomBy of [1, 4]) {
      await page.evaluate((f) => {
        const tf = (window as unknown as { tilefarm: { view: { setPosition(p: unknown): void; position: { x: number; y: number; zoom: number } } } }).tilefarm;
        tf.view.setPosition({ ...tf.view.position, zoom: tf.view.position.zoom * f });
      }, zoomBy);
      await page.waitForTimeout(300);
      const bar = await page.evaluate(() => {
        const root = document.querySelector<HTMLElement>('#scalebar')!;
        const line = root.querySelector<HTMLElement>('.scale-bar-line')!;
        return { state: root.dataset.state, label: root.querySelector('.scale-bar-label')!.textContent, lineWidth: line.getBoundingClientRect().width, visible: getComputedStyle(root).display !== 'none' };
      });
      expect(bar).toEqual({ state: 'none', label: 'no physical size', lineWidth: 0, visible: true });
    }
    // The readout gives pixels only (no µm) for it.
    const box = (await page.locator('#view').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(() => (document.querySelector('#readout')?.textContent ?? '').startsWith('x '), null, { timeout: 15_000 });
    expect(await page.locator('#readout').textContent()).not.toContain('µm');
    // A dataset with a physical size: a bar again.
    await page.goto(`${system.apiUrl}/#d=demo`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#scalebar')?.dataset.state === 'ok', null, { timeout: 60_000 });
    expect(await page.locator('#scalebar .scale-bar-label').textContent()).toMatch(/^[\d.]+ (nm|µm|mm)$/);
  }, 120_000);

  it('PNG of the view: the downloaded file shows what the server renders for that spec (±1)', async () => {
    await page.goto(`${system.apiUrl}/${linkTo('demo', SPEC)}`);
    await page.reload();
    // The server's picture of exactly this spec (not the view the first test left behind), complete, under a complete GPU layer.
    const layer = `demo/${specId}/0/0/png`;
    await page
      .waitForFunction((key) => document.body.dataset.complete === 'true' && document.body.dataset.gpuComplete === 'true' && document.body.dataset.shown === key, layer, { timeout: 90_000, polling: 100 })
      .catch(async (e: Error) => {
        // Once failed in a clean-clone CI run and never alone: say what the viewer was showing.
        const state = await page.evaluate(() => ({ ...document.body.dataset, hash: location.hash }));
        throw new Error(`${e.message}\nexpected ${layer}; the viewer's state: ${JSON.stringify(state)}`);
      });
    // The picture must hold still while it is exported: OpenSeadragon may still be springing to
    // its home view on a slow first load, and a file taken mid-animation matches no geometry.
    const geometry = async () => (await page.evaluate(() => (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm.geometry())) as Geometry;
    let g = await geometry();
    for (let still = 0; still < 3; ) {
      await page.waitForTimeout(150);
      const now = await geometry();
      still = JSON.stringify(now) === JSON.stringify(g) ? still + 1 : 0;
      g = now;
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-png')]);
    expect(await geometry()).toEqual(g);
    expect(download.suggestedFilename()).toBe('demo-z0-t0.png');
    const png = await decoded(download);
    expect(png.width).toBeGreaterThan(600);
    const f = 2 ** g.level;
    let compared = 0;
    let worst = 0;
    for (let cy = 3; cy < png.height; cy += 9) {
      for (let cx = 3; cx < png.width; cx += 9) {
        // The level pixel under this file pixel's centre; centres near a pixel edge are skipped.
        const lx = ((cx + 0.5) / g.dpr - g.originX) / g.scale / f;
        const ly = ((cy + 0.5) / g.dpr - g.originY) / g.scale / f;
        const fx = lx - Math.floor(lx);
        const fy = ly - Math.floor(ly);
        if (lx < 0 || ly < 0 || lx >= 1024 / f || ly >= 768 / f || fx < 0.05 || fx > 0.95 || fy < 0.05 || fy > 0.95) continue;
        const want = await serverPixel('demo', g.level, Math.floor(lx), Math.floor(ly));
        const i = (cy * png.width + cx) * png.channels;
        for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(png.data[i + k]! - want[k]!));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(2000);
    expect(worst).toBeLessThanOrEqual(1);
    expect(pageErrors).toEqual([]);
  }, 150_000);

  it('a region dragged over the picture is exported at full resolution by the workers, with progress, every pixel equal to the server\'s ±1', async () => {
    await page.goto(`${system.apiUrl}/${linkTo('wide', SPEC)}`);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.complete === 'true' && (document.body.dataset.shown ?? '').startsWith('wide/'), null, { timeout: 90_000, polling: 100 });
    const g = (await page.evaluate(() => (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm.geometry())) as Geometry;
    const box = (await page.locator('#view').boundingBox())!;
    // From image pixel (300, 200) to (1800, 1450): 1500 × 1250 px, four region renders of at most 1024².
    const at = (ix: number, iy: number) => [box.x + g.originX + ix * g.scale, box.y + g.originY + iy * g.scale] as const;
    await page.click('#export-region');
    expect(await page.evaluate(() => document.body.dataset.export)).toBe('selecting');
    const progress = new Set<string>();
    const sampler = setInterval(() => void page.evaluate(() => document.querySelector('#export-status span')?.textContent ?? '').then((s) => progress.add(s), () => undefined), 50);
    const downloaded = page.waitForEvent('download', { timeout: 120_000 });
    await page.mouse.move(...at(300.2, 200.2));
    await page.mouse.down();
    await page.mouse.move(...at(1000, 900), { steps: 4 });
    await page.mouse.move(...at(1799.8, 1449.8), { steps: 4 });
    await page.mouse.up();
    const download = await downloaded;
    clearInterval(sampler);
    await page.waitForFunction(() => document.body.dataset.export === 'done', null, { timeout: 10_000 });
    const [x, y, w, h] = (await page.evaluate(() => document.body.dataset.exportRegion))!.split(',').map(Number) as [number, number, number, number];
    // The drag maps to image pixels to within one screen pixel's worth at this zoom.
    const slack = Math.ceil(1 / g.scale) + 1;
    for (const [got, want] of [[x, 300], [y, 200], [x + w, 1800], [y + h, 1450]]) expect(Math.abs(got! - want!)).toBeLessThanOrEqual(slack);
    expect(download.suggestedFilename()).toBe(`wide-z0-t0-x${x}-y${y}-${w}x${h}.png`);
    expect([...progress].some((s) => /: [1-3]\/4 regions$/.test(s))).toBe(true);
    const png = await decoded(download);
    expect([png.width, png.height]).toEqual([w, h]);
    // Every pixel against the level-0 server tiles of the same spec.
    let worst = 0;
    for (let py = 0; py < h; py++) {
      for (let px = 0; px < w; px++) {
        const want = await serverPixel('wide', 0, x + px, y + py);
        const i = (py * w + px) * png.channels;
        for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(png.data[i + k]! - want[k]!));
      }
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(pageErrors).toEqual([]);
  }, 240_000);
  // The cause of the failure noted at the top, made to happen: a link's spec registration met a
  // dropped connection or a 503 and the viewer gave up on the link. It now asks again; only a real
  // refusal falls back to the dataset's defaults, and then it says so.
  it('a link opens with its own spec even when registering it first meets a dropped connection and a 503', async () => {
    const p = await chromium.browser.newPage({ viewport: { width: 900, height: 700 } });
    try {
      const hiccups = ['connectionreset', 503];
      let posts = 0;
      await p.route('**/v1/specs', async (route) => {
        if (route.request().method() !== 'POST') return route.continue();
        posts++;
        const next = hiccups.shift();
        if (next === undefined) return route.continue();
        if (typeof next === 'string') return route.abort(next);
        return route.fulfill({ status: next, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'A backing service is unavailable; try again shortly.' } }) });
      });
      await p.goto(`${system.apiUrl}/${linkTo('demo', SPEC)}`);
      await p.waitForFunction((key) => document.body.dataset.complete === 'true' && document.body.dataset.shown === key, `demo/${specId}/0/0/png`, { timeout: 60_000, polling: 100 });
      expect(posts).toBe(3);
      expect((await p.locator('#panel').textContent()) ?? '').not.toMatch(/could not|unavailable/);
    } finally {
      await p.close();
    }
  }, 90_000);

  it('a link whose spec the server refuses shows the dataset\'s defaults and says why', async () => {
    const p = await chromium.browser.newPage({ viewport: { width: 900, height: 700 } });
    try {
      await p.route('**/v1/specs', async (route) => {
        const body = route.request().postData() ?? '';
        // Only the link's spec is refused (its window 100–2500 on channel 0); the defaults register.
        if (route.request().method() !== 'POST' || !body.includes('2500')) return route.continue();
        return route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_spec', message: 'channels.0.window: refused here' } }) });
      });
      await p.goto(`${system.apiUrl}/${linkTo('demo', SPEC)}`);
      await p.waitForFunction(() => document.body.dataset.complete === 'true' && /^demo\/[^/]+\/0\/0\/jpeg$/.test(document.body.dataset.shown ?? ''), null, { timeout: 60_000, polling: 100 });
      expect(await p.locator('.spec-error').textContent()).toMatch(/link's render settings could not be used \(channels\.0\.window: refused here\)/);
    } finally {
      await p.close();
    }
  }, 90_000);
});
