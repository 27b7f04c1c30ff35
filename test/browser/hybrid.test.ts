import { copyFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { TestSystem } from '../support/system';
import { launchChromium, type RunningBrowser } from './browser';

// Hybrid rendering in Chromium (WebGL2 through SwiftShader): first paint from the server, then the
// visible tiles from raw uint16 pixels on the GPU. Checked against the server's own PNG tiles, the
// shared fixture's known values, and with the network watched.

/** Shared fixtures live beside the repository: <clone>/../shared/fixtures (also in CI). */
const FIXTURES = resolve(__dirname, '../../../shared/fixtures');
const ROOT = resolve(__dirname, '../..');
const RESULTS = resolve(ROOT, 'test-results');

interface Geometry {
  originX: number;
  originY: number;
  scale: number;
  dpr: number;
  width: number;
  height: number;
  level: number;
}

type SpecInput = { v: 1; channels: Record<string, unknown>[]; composite?: 'add' | 'max'; format?: 'png' | 'jpeg' };

async function gpuComplete(page: Page): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.gpuComplete === 'true', null, { timeout: 60_000, polling: 50 });
}

/** Samples of the GPU layer (every 11th canvas pixel that is drawn) and the geometry they were drawn with. */
async function sampleGpu(page: Page): Promise<{ g: Geometry; samples: number[][] }> {
  return page.evaluate(() => {
    const tf = (window as unknown as { tilefarm: { hybrid: { canvas: HTMLCanvasElement; draw(): void }; geometry(): Geometry } }).tilefarm;
    tf.hybrid.draw();
    const src = tf.hybrid.canvas;
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height;
    const g2 = c.getContext('2d', { willReadFrequently: true })!;
    g2.drawImage(src, 0, 0);
    const d = g2.getImageData(0, 0, c.width, c.height).data;
    const samples: number[][] = [];
    for (let y = 3; y < c.height; y += 11) {
      for (let x = 3; x < c.width; x += 11) {
        const i = (y * c.width + x) * 4;
        if (d[i + 3] === 255) samples.push([x, y, d[i]!, d[i + 1]!, d[i + 2]!]);
      }
    }
    return { g: tf.geometry(), samples };
  });
}

async function serverTile(system: TestSystem, dataset: string, specId: string, level: number, z: number, x: number, y: number): Promise<{ data: Buffer; width: number }> {
  const res = await fetch(`${system.apiUrl}/v1/tiles/${dataset}/${specId}/${level}/${z}/0/${x}/${y}.png`);
  if (res.status !== 200) throw new Error(`tile ${level}/${x}/${y}: ${res.status} ${await res.text()}`);
  const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected RGB, got ${info.channels} channels`);
  return { data, width: info.width };
}

async function specIdOf(system: TestSystem, spec: SpecInput): Promise<string> {
  const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  return ((await res.json()) as { id: string }).id;
}

describe('hybrid rendering (WebGL2 from raw pixels) in Chromium', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let page: Page;
  const pageErrors: string[] = [];

  /** A new page (a new document: no state, no pending URL writes from an earlier view). */
  async function freshPage(url: string): Promise<Page> {
    await page?.close();
    const p = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    await p.goto(url);
    return p;
  }

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 2, env: { INGEST_ROOT: FIXTURES }, datasets: [{ id: 'demo', width: 1024, height: 768, sizeZ: 3 }, { id: 'movie', width: 512, height: 512, sizeZ: 1, sizeT: 10 }] });
    const ingest = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'cells', source: 'cells-3c-10z.ome.tif' }) });
    expect(ingest.status).toBe(202);
    page = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  it('draws the visible tiles on the GPU after the server-rendered first paint, and says so', async () => {
    await page.goto(`${system.apiUrl}/#d=demo&z=1`);
    await page.waitForFunction(() => document.body.dataset.complete === 'true', null, { timeout: 60_000 });
    await gpuComplete(page);
    expect(await page.locator('#mode').textContent()).toMatch(/GPU from raw pixels (\d+)\/\1/);
    expect(await page.evaluate(() => document.body.dataset.renderMode)).toBe('gpu');
  }, 90_000);

  it('equals the server render of the same spec within ±1 for colour, LUT, gamma, invert, add and max', async () => {
    const specs: SpecInput[] = [
      { v: 1, channels: [{ index: 0, color: '#0080ff', window: [100, 2500] }, { index: 1, color: '#00ff00', window: [150, 1800] }, { index: 2, color: '#ff0000', window: [120, 3000] }], format: 'png' },
      { v: 1, channels: [{ index: 0, color: '#ffff00', window: [100, 4000], gamma: 0.6 }, { index: 1, color: '#00ffff', window: [300, 1200], invert: true }, { index: 2, color: '#ff00ff', window: [100, 2000], gamma: 1.7 }], composite: 'max', format: 'png' },
      { v: 1, channels: [{ index: 0, lut: 'fire', window: [100, 3000] }, { index: 1, lut: 'viridis', window: [100, 2000], active: false }, { index: 2, color: '#808080', window: [90, 2500], gamma: 2 }], format: 'png' },
    ];
    for (const spec of specs) {
      const specId = await specIdOf(system, spec);
      await page.evaluate((s) => (window as unknown as { tilefarm: { hybrid: { setSpec(s: unknown): unknown } } }).tilefarm.hybrid.setSpec(s), spec);
      const { g, samples } = await sampleGpu(page);
      const f = 2 ** g.level;
      const tiles = new Map<string, { data: Buffer; width: number }>();
      let compared = 0;
      let worst = 0;
      for (const [cx, cy, r, gg, b] of samples as [number, number, number, number, number][]) {
        // The level pixel under this canvas pixel's centre (skipping centres near a pixel edge).
        const lx = ((cx + 0.5) / g.dpr - g.originX) / g.scale / f;
        const ly = ((cy + 0.5) / g.dpr - g.originY) / g.scale / f;
        const fx = lx - Math.floor(lx);
        const fy = ly - Math.floor(ly);
        if (fx < 0.05 || fx > 0.95 || fy < 0.05 || fy > 0.95 || lx < 0 || ly < 0) continue;
        const tx = Math.floor(lx / 256);
        const ty = Math.floor(ly / 256);
        const key = `${tx}/${ty}`;
        let tile = tiles.get(key);
        if (!tile) {
          tile = await serverTile(system, 'demo', specId, g.level, 1, tx, ty);
          tiles.set(key, tile);
        }
        const i = ((Math.floor(ly) - ty * 256) * tile.width + (Math.floor(lx) - tx * 256)) * 3;
        worst = Math.max(worst, Math.abs(r - (tile.data[i] ?? 0)), Math.abs(gg - (tile.data[i + 1] ?? 0)), Math.abs(b - (tile.data[i + 2] ?? 0)));
        compared++;
      }
      expect(compared).toBeGreaterThan(2000);
      expect(worst).toBeLessThanOrEqual(1);
    }
  }, 240_000);

  it('a window change redraws with no network request, issued within the input event; input-to-redraw over 50 changes measured', async () => {
    page = await freshPage(`${system.apiUrl}/#d=demo&z=1`);
    await gpuComplete(page);
    // Let the first paint and the ±1 z prefetch finish.
    await page.waitForFunction(() => document.body.dataset.gpuPending === '0' && document.body.dataset.busy === 'false', null, { timeout: 60_000, polling: 100 });
    await page.waitForTimeout(500);
    const requests: string[] = [];
    const onRequest = (r: { url(): string }) => requests.push(r.url());
    page.on('request', onRequest);
    const result = await page.evaluate(async () => {
      const lo = document.querySelector<HTMLInputElement>('[data-channel="1"] .ch-lo')!;
      const body = document.body.dataset;
      const gpu = (window as unknown as { tilefarm: { hybrid: { canvas: HTMLCanvasElement } } }).tilefarm.hybrid.canvas;
      const probe = document.createElement('canvas');
      probe.width = 256;
      probe.height = 256;
      const g2 = probe.getContext('2d', { willReadFrequently: true })!;
      const sum = () => {
        (window as unknown as { tilefarm: { hybrid: { draw(): void } } }).tilefarm.hybrid.draw();
        g2.clearRect(0, 0, probe.width, probe.height);
        g2.drawImage(gpu, gpu.width / 2 - 128, gpu.height / 2 - 128, 256, 256, 0, 0, 256, 256);
        const d = g2.getImageData(0, 0, probe.width, probe.height).data;
        let s = 0;
        for (let i = 1; i < d.length; i += 4) s += d[i]!;
        return s;
      };
      const times: number[] = [];
      const cpu: number[] = [];
      const frames: number[] = [];
      const submitted: number[] = [];
      const hybrid = (window as unknown as { tilefarm: { hybrid: { lastDrawMs: number; sync(): void } } }).tilefarm.hybrid;
      const sums: number[] = [];
      for (let i = 0; i < 50; i++) {
        const drawsBefore = Number(body.gpuDraws);
        lo.value = String(100 + ((i * 37) % 900));
        const t0 = performance.now();
        lo.dispatchEvent(new Event('change'));
        if (Number(body.gpuDraws) <= drawsBefore) throw new Error(`change ${i} did not redraw`);
        submitted.push(performance.now() - t0);
        // Input to the new picture finished on the GPU; then to the next frame (display timing).
        hybrid.sync();
        times.push(performance.now() - t0);
        await new Promise(requestAnimationFrame);
        frames.push(performance.now() - t0);
        cpu.push(hybrid.lastDrawMs);
        if (i === 0 || i === 49) sums.push(sum());
      }
      return { times, cpu, frames, submitted, distinct: new Set(sums).size };
    });
    page.off('request', onRequest);
    const sorted = [...result.times].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length * 0.5)]!;
    const p95 = sorted[Math.floor(sorted.length * 0.95)]!;
    const cpu = [...result.cpu].sort((a, b) => a - b);
    const frames = [...result.frames].sort((a, b) => a - b);
    console.log(
      `input-to-redraw over 50 window changes: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms (draw call CPU p50 ${cpu[25]!.toFixed(1)} ms; to the next animation frame p50 ${frames[25]!.toFixed(1)} ms, p95 ${frames[47]!.toFixed(1)} ms)`,
    );
    expect(requests).toEqual([]);
    expect(result.distinct).toBe(2); // the picture really changed with the window
    // Asserted: every change redrew inside its own input event, with no request. The times are
    // logged, not asserted: with SwiftShader (WebGL on the CPU) on the shared 2-core machine they
    // measure the machine's load more than the viewer (README: figures and the load they ran under).
    const submitted = [...result.submitted].sort((a, b) => a - b);
    console.log(`input handled and redraw issued: p50 ${submitted[25]!.toFixed(1)} ms, p95 ${submitted[47]!.toFixed(1)} ms`);
    // The server's picture follows once the input is quiet (links and the cache stay right).
    await page.waitForFunction(() => /s=/.test(location.hash) && document.body.dataset.busy === 'false' && document.body.dataset.complete === 'true', null, { timeout: 30_000 });
  }, 300_000);

  it('formulas and projections stay server-rendered, and the viewer says so', async () => {
    await page.locator('.projection-type').selectOption('max');
    await page.waitForFunction(() => document.body.dataset.renderMode === 'server', null, { timeout: 10_000 });
    expect(await page.locator('#mode').textContent()).toMatch(/server-rendered \(Z projection\)/);
    await page.locator('.projection-type').selectOption('');
    await gpuComplete(page);
  }, 60_000);

  it('shows the raw value of every channel under the cursor (the fixture\'s known value), with µm, z and t', async () => {
    const deadline = Date.now() + 90_000;
    while ((await fetch(`${system.apiUrl}/v1/datasets/cells`)).status !== 200) {
      if (Date.now() > deadline) throw new Error('fixture ingest did not finish');
      await new Promise((r) => setTimeout(r, 500));
    }
    page = await freshPage(`${system.apiUrl}/#d=cells&z=1`);
    await page.waitForFunction(() => document.body.dataset.complete === 'true' && (document.body.dataset.shown ?? '').startsWith('cells/'), null, { timeout: 60_000 });
    const g = (await page.evaluate(() => (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm.geometry())) as Geometry;
    const box = (await page.locator('#view').boundingBox())!;
    // Known value: z=1, c=0, y=123, x=456 → 84 (fixtures README).
    await page.mouse.move(box.x + g.originX + 456.5 * g.scale, box.y + g.originY + 123.5 * g.scale);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#readout')?.dataset.x === '456' && document.querySelector<HTMLElement>('#readout')?.dataset.y === '123', null, { timeout: 15_000 });
    const text = (await page.locator('#readout').textContent()) ?? '';
    expect(text).toContain('148.20 µm'); // 456 × 0.325
    expect(text).toContain('z 2/10');
    expect(text).toContain('t 1/1');
    const values = JSON.parse((await page.locator('#readout').getAttribute('data-values')) ?? 'null') as number[];
    expect(values).toHaveLength(3);
    expect(values[0]).toBe(84);
    expect(text).toMatch(/DAPI 84/);
  }, 150_000);

  it('the scale bar is as long as its label says, at two zooms', async () => {
    const labels: string[] = [];
    for (const zoomBy of [1, 3.7]) {
      await page.evaluate((f) => {
        const tf = (window as unknown as { tilefarm: { view: { setPosition(p: unknown): void; position: { x: number; y: number; zoom: number } } } }).tilefarm;
        const p = tf.view.position;
        tf.view.setPosition({ ...p, zoom: p.zoom * f });
      }, zoomBy);
      await page.waitForTimeout(300);
      const r = await page.evaluate(() => {
        const tf = (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm;
        const bar = document.querySelector<HTMLElement>('#scalebar')!;
        return { scale: tf.geometry().scale, width: bar.querySelector('.scale-bar-line')!.getBoundingClientRect().width, label: bar.querySelector('.scale-bar-label')!.textContent ?? '', state: bar.dataset.state };
      });
      expect(r.state).toBe('ok');
      const m = /^([\d.]+) (nm|µm|mm)$/.exec(r.label);
      expect(m).not.toBeNull();
      const um = Number(m![1]) * (m![2] === 'nm' ? 1e-3 : m![2] === 'mm' ? 1e3 : 1);
      expect(String(Number(m![1]))).toMatch(/^[125]0*$|^0\.0*[125]$/);
      const measured = (r.width / r.scale) * 0.325; // CSS px → image px → µm
      expect(Math.abs(measured - um) / um).toBeLessThan(0.01);
      labels.push(r.label);
    }
    expect(labels[0]).not.toBe(labels[1]);
    // The screenshot of the README: fixture on the GPU, values under the cursor, scale bar, mode.
    await page.keyboard.press('0');
    await page.waitForTimeout(1500);
    await gpuComplete(page);
    const g = (await page.evaluate(() => (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm.geometry())) as Geometry;
    const box = (await page.locator('#view').boundingBox())!;
    await page.mouse.move(box.x + g.originX + 456.5 * g.scale, box.y + g.originY + 123.5 * g.scale);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#readout')?.dataset.x === '456', null, { timeout: 15_000 }).catch(() => undefined);
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: resolve(RESULTS, 'viewer-hybrid.png') });
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') copyFileSync(resolve(RESULTS, 'viewer-hybrid.png'), resolve(ROOT, 'docs/viewer.png'));
  }, 60_000);

  it('plays through 10 time points showing 10 different frames, and pauses', async () => {
    page = await freshPage(`${system.apiUrl}/#d=movie&t=0`);
    await page.waitForFunction(() => document.body.dataset.complete === 'true', null, { timeout: 60_000 });
    await page.locator('#fps').selectOption('2');
    await page.locator('#view').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('Space');
    // Each time point as shown (server picture + GPU layer), captured once it is on screen.
    const frames = await page.evaluate(
      () =>
        new Promise<Record<string, number>>((resolve, reject) => {
          const tf = (window as unknown as { tilefarm: { frameShown(): boolean; snapshot(): HTMLCanvasElement; plane(): { t: number } } }).tilefarm;
          const seen: Record<string, number> = {};
          const started = performance.now();
          const poll = () => {
            if (performance.now() - started > 150_000) return reject(new Error(`only saw ${Object.keys(seen).join(',')}`));
            const t = String(tf.plane().t);
            if (seen[t] === undefined && tf.frameShown()) {
              const c = tf.snapshot();
              const d = c.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, c.width, c.height).data;
              let h = 0;
              for (let i = 0; i < d.length; i += 4 * 13) h = (Math.imul(h, 31) + d[i]! + 7 * d[i + 1]! + 13 * d[i + 2]!) | 0;
              seen[t] = h;
            }
            if (Object.keys(seen).length === 10) resolve(seen);
            else setTimeout(poll, 20);
          };
          poll();
        }),
    );
    expect(Object.keys(frames).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(new Set(Object.values(frames)).size).toBe(10);
    await page.keyboard.press('Space');
    expect(await page.evaluate(() => document.body.dataset.playing)).toBe('false');
  }, 240_000);

  it('keyboard: channel toggles redraw on the GPU, ? shows the help, 0 resets the view', async () => {
    await gpuComplete(page);
    const draws = Number(await page.evaluate(() => document.body.dataset.gpuDraws));
    await page.keyboard.press('2');
    expect(await page.locator('[data-channel="1"] .ch-active').isChecked()).toBe(false);
    expect(Number(await page.evaluate(() => document.body.dataset.gpuDraws))).toBeGreaterThan(draws);
    await page.keyboard.press('2');
    expect(await page.locator('[data-channel="1"] .ch-active').isChecked()).toBe(true);
    await page.keyboard.press('?');
    expect(await page.locator('#help').isVisible()).toBe(true);
    expect(await page.locator('#help').textContent()).toMatch(/play/);
    await page.keyboard.press('Escape');
    expect(await page.locator('#help').isVisible()).toBe(false);
  }, 60_000);

  it('had no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
