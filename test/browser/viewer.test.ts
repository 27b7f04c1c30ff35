import { copyFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { TestSystem } from '../support/system';
import { canvasColours, fingerprintDistance, launchChromium, type RunningBrowser } from './browser';

const ROOT = resolve(__dirname, '../..');
const RESULTS = resolve(ROOT, 'test-results');

/** The viewer has every tile of the picture on screen and nothing else loading. */
async function settled(page: Page, previousShown?: string): Promise<string> {
  await page.waitForFunction(
    (prev) => {
      const d = document.body.dataset;
      // The server's picture complete, and the GPU layer over it too when it draws (hybrid mode).
      const gpuSettled = d.renderMode !== 'gpu' || d.gpuComplete === 'true';
      return d.complete === 'true' && d.busy === 'false' && !!d.shown && d.shown !== prev && gpuSettled;
    },
    previousShown ?? '',
    { timeout: 45_000, polling: 50 },
  );
  return page.evaluate(() => document.body.dataset.shown ?? '');
}

/** Samples how much of the canvas is lit on every frame until the view settles on a new picture. */
async function watchForBlank(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { litSamples: number[]; sampling: boolean };
    w.litSamples = [];
    w.sampling = true;
    const canvas = [...document.querySelectorAll<HTMLCanvasElement>('#view canvas')].sort((a, b) => b.width * b.height - a.width * a.height)[0]!;
    const g = canvas.getContext('2d', { willReadFrequently: true })!;
    const sample = () => {
      if (!w.sampling) return;
      const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
      let lit = 0;
      for (let i = 0; i < data.length; i += 16) if (Math.max(data[i]!, data[i + 1]!, data[i + 2]!) > 24) lit++;
      w.litSamples.push(lit);
      requestAnimationFrame(sample);
    };
    requestAnimationFrame(sample);
  });
}

async function stopWatching(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const w = window as unknown as { litSamples: number[]; sampling: boolean };
    w.sampling = false;
    return w.litSamples;
  });
}

describe('viewer in Chromium (real system: API, gateway, 2 workers)', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let page: Page;
  const sockets: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 2, datasets: [{ id: 'demo', width: 1024, height: 768, sizeZ: 5 }] });
    page = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  let shown = '';
  let before: Awaited<ReturnType<typeof canvasColours>>;

  it('opens the demo dataset and draws tiles in the default colours; a screenshot is written', async () => {
    // The default (hybrid) mode, as users get it: the server's picture over the socket with the GPU
    // layer over it; every check reads what the user sees (viewer snapshot: both layers).
    await page.goto(`${system.apiUrl}/#d=demo`);
    shown = await settled(page);
    expect(shown).toMatch(/^demo\/s[0-9a-f]{16}\/2\/0\/jpeg$/); // middle Z of 5
    const c = await canvasColours(page);
    expect(c.width).toBeGreaterThan(500);
    expect(c.lit).toBeGreaterThan(5000);
    // DAPI blue (#0080ff) + GFP green + mCherry red: all three primaries appear.
    expect(c.maxR).toBeGreaterThan(100);
    expect(c.maxG).toBeGreaterThan(100);
    expect(c.maxB).toBeGreaterThan(100);
    // With the render-timing overlay on, so the screenshot shows it too.
    await page.locator('.debug-toggle').check();
    await page.waitForFunction(() => (document.querySelector('#debug')?.textContent ?? '').includes(' ms'));
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: resolve(RESULTS, 'viewer.png') });
    // The README's picture is refreshed on request only: UPDATE_DOCS_SCREENSHOT=1.
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') copyFileSync(resolve(RESULTS, 'viewer.png'), resolve(ROOT, 'docs/viewer.png'));
    await page.locator('.debug-toggle').uncheck();
  }, 90_000);

  it('shows only channel 1 in pure green when the other channels are switched off', async () => {
    await page.locator('[data-channel="0"] .ch-active').uncheck();
    await page.locator('[data-channel="2"] .ch-active').uncheck();
    shown = await settled(page, shown);
    before = await canvasColours(page);
    expect(before.lit).toBeGreaterThan(2000);
    expect(before.maxG).toBeGreaterThan(150);
    // JPEG tiles: chroma noise only, far from any real red or blue.
    expect(before.maxR).toBeLessThanOrEqual(40);
    expect(before.maxB).toBeLessThanOrEqual(40);
    expect(before.sumG).toBeGreaterThan(20 * (before.sumR + before.sumB));
  }, 90_000);

  it('a link reproduces the view: a PNG spec from the URL draws exactly R = B = 0', async () => {
    const spec = { v: 1, channels: [{ index: 1, color: '#00ff00', window: [0, 3000] }], format: 'png' };
    const hash = `#d=demo&z=2&t=0&s=${Buffer.from(JSON.stringify(spec)).toString('base64url')}`;
    const linked = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    linked.on('websocket', () => undefined);
    try {
      await linked.goto(`${system.apiUrl}/${hash}`);
      const key = await settled(linked);
      expect(key).toMatch(/\/2\/0\/png$/);
      const c = await canvasColours(linked);
      expect(c.lit).toBeGreaterThan(2000);
      expect(c.maxG).toBeGreaterThan(150);
      expect(c.maxR).toBe(0);
      expect(c.maxB).toBe(0);
      // The viewer writes its state back: same dataset, z and spec, plus position and zoom.
      await linked.waitForFunction(() => /zoom=/.test(location.hash));
      const written = new URLSearchParams((await linked.evaluate(() => location.hash)).slice(1));
      expect(written.get('d')).toBe('demo');
      expect(written.get('z')).toBe('2');
      expect(JSON.parse(Buffer.from(written.get('s') ?? '', 'base64url').toString())).toMatchObject(spec);
    } finally {
      await linked.close();
    }
  }, 90_000);

  it('stepping Z changes the picture, and the old slice stays on screen until the new one is complete', async () => {
    await watchForBlank(page);
    await page.locator('#view').click({ position: { x: 5, y: 5 } }).catch(() => undefined);
    await page.keyboard.press('PageDown');
    shown = await settled(page, shown);
    const samples = await stopWatching(page);
    expect(shown).toMatch(/\/3\/0\/jpeg$/);
    const after = await canvasColours(page);
    expect(fingerprintDistance(before, after)).toBeGreaterThan(0.5);
    expect(after.maxR).toBeLessThanOrEqual(40); // still the green-only spec
    // Never blank while the next slice rendered: every frame kept most of the lit area.
    const litBefore = samples[0] ?? 0;
    expect(litBefore).toBeGreaterThan(100);
    expect(Math.min(...samples)).toBeGreaterThan(litBefore * 0.5);
    expect(await page.locator('#z').inputValue()).toBe('3');
    before = after;
  }, 90_000);

  it('changing the channel colour changes the picture to the new colour', async () => {
    await page.locator('[data-channel="1"] .ch-color').fill('#ff00ff');
    shown = await settled(page, shown);
    const c = await canvasColours(page);
    expect(c.lit).toBeGreaterThan(2000);
    expect(c.maxR).toBeGreaterThan(150);
    expect(c.maxB).toBeGreaterThan(150);
    expect(c.maxG).toBeLessThanOrEqual(40);
    before = c;
  }, 90_000);

  it('a bad formula shows its parse error inline and keeps the old picture', async () => {
    await page.locator('.add-derived').click();
    const row = page.locator('[data-channel="3"]');
    await row.locator('.ch-formula').fill('c0 +* 2');
    await row.locator('.ch-formula').press('Enter');
    await row.locator('.ch-error').filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
    const message = await row.locator('.ch-error').textContent();
    expect(message).toMatch(/unexpected|expected|formula/i);
    expect(await page.evaluate(() => document.body.dataset.shown)).toBe(shown);
    const c = await canvasColours(page);
    expect(fingerprintDistance(before, c)).toBeLessThan(0.5);
    expect(c.maxG).toBeLessThanOrEqual(40);

    // Parses, but names a channel the dataset lacks: refused when its tiles are asked for; old picture stays.
    await row.locator('.ch-formula').fill('c7 * 2');
    await row.locator('.ch-formula').press('Enter');
    await page.locator('.spec-error').filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
    expect(await page.locator('.spec-error').textContent()).toMatch(/c7|channel/i);
    await page.waitForFunction(() => document.body.dataset.loading === '');
    expect(await page.evaluate(() => document.body.dataset.shown)).toBe(shown);
    expect(fingerprintDistance(before, await canvasColours(page))).toBeLessThan(0.5);
  }, 60_000);

  it('tells the page where the gateway is; without ADMIN_TOKEN the queue dashboard does not exist (404)', async () => {
    const config = (await (await fetch(`${system.apiUrl}/v1/config`)).json()) as { gatewayUrl: string };
    expect(config.gatewayUrl).toBe(system.gatewayUrl(0));
    expect((await fetch(`${system.apiUrl}/admin/queues`)).status).toBe(404);
    expect((await fetch(`${system.apiUrl}/admin/queues`, { headers: { authorization: 'Bearer whatever-token-0000000' } })).status).toBe(404);
  });

  it('used exactly one WebSocket for every tile, and no page errors', async () => {
    const done = Number(await page.evaluate(() => document.body.dataset.tilesDone));
    expect(done).toBeGreaterThan(20);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).toContain(`127.0.0.1:${system.gatewayPorts[0]}`);
    expect(pageErrors).toEqual([]);
  });

  it('falls back to plain HTTP tile URLs when the gateway is down', async () => {
    await page.locator('[data-channel="3"] .ch-remove').click(); // drop the bad formula again
    const gateway = system.processes.find((p) => p.name === 'gateway-0');
    await gateway?.stop('SIGKILL');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.includes('HTTP'), null, { timeout: 15_000 });
    await page.keyboard.press('PageDown');
    shown = await settled(page, shown);
    expect(shown).toMatch(/\/4\/0\/jpeg$/);
    const text = (await page.locator('#status').textContent()) ?? '';
    expect(Number(/via HTTP (\d+)/.exec(text)?.[1] ?? 0)).toBeGreaterThan(0);
    const c = await canvasColours(page);
    expect(fingerprintDistance(before, c)).toBeGreaterThan(0.5);
    expect(c.maxR).toBeGreaterThan(150); // still magenta
    expect(c.maxB).toBeGreaterThan(150);
  }, 90_000);
});
