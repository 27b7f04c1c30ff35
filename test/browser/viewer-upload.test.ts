import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { TestSystem } from '../support/system';
import { launchChromium, type RunningBrowser } from './browser';

// Issue 14, upload through the page (Chromium, real processes, S3 storage on s3rver): a shared
// fixture picked in the page is sent in parts, ingested by the workers with progress shown, and
// opens when done: its known value under the cursor proves the pixels arrived. A file dropped on
// the page and cancelled mid-way leaves nothing in the bucket (s3rver's files looked at directly,
// multipart parts included).

const FIXTURES = resolve(__dirname, '../../../shared/fixtures');

interface Geometry {
  originX: number;
  originY: number;
  scale: number;
}

describe('upload through the viewer', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let page: Page;
  const pageErrors: string[] = [];
  const uploadFiles = () => system.storedFiles().filter((f) => f.startsWith('uploads/') || f.includes('._S3rver_uploads'));

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 2, storage: 's3', env: { UPLOAD_PART_MB: '5' }, datasets: [{ id: 'demo', width: 512, height: 512, sizeZ: 1 }] });
    page = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 120_000);
  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  it('a shared fixture uploaded through the page is ingested with progress and opens, with its known pixel value', async () => {
    await page.goto(`${system.apiUrl}/#d=demo`);
    await page.waitForFunction(() => document.body.dataset.complete === 'true', null, { timeout: 60_000 });
    // Progress as the page shows it, sampled while it runs.
    const seen = new Set<string>();
    const sampler = setInterval(() => void page.evaluate(() => `${document.body.dataset.upload}:${document.querySelector('#upload span')?.textContent ?? ''}`).then((s) => seen.add(s), () => undefined), 100);
    await page.setInputFiles('#upload-file', resolve(FIXTURES, 'pyramid-4c-3z.ome.tif'));
    await page.waitForFunction(() => document.body.dataset.upload === 'done' || document.body.dataset.upload === 'failed', null, { timeout: 240_000, polling: 100 });
    clearInterval(sampler);
    expect(await page.locator('#upload span').textContent()).toBe('pyramid-4c-3z is ready');
    expect([...seen].some((s) => /^uploading:uploading pyramid-4c-3z\.ome\.tif: \d+ %/.test(s))).toBe(true);
    expect(await page.evaluate(() => document.body.dataset.uploadDataset)).toBe('pyramid-4c-3z');
    // It opens by itself, and renders.
    await page.waitForFunction(() => document.body.dataset.complete === 'true' && (document.body.dataset.shown ?? '').startsWith('pyramid-4c-3z/'), null, { timeout: 90_000 });
    expect(await page.locator('#dataset').inputValue()).toBe('pyramid-4c-3z');
    const lit = await page.evaluate(() => {
      const c = (window as unknown as { tilefarm: { snapshot(): HTMLCanvasElement } }).tilefarm.snapshot();
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.max(d[i]!, d[i + 1]!, d[i + 2]!) > 24) n++;
      return n / (d.length / 4);
    });
    expect(lit).toBeGreaterThan(0.2);
    // The fixture README's known value under the cursor: z=1 (the middle slice it opens on), c=0, y=123, x=456 → 211.
    const g = (await page.evaluate(() => (window as unknown as { tilefarm: { geometry(): Geometry } }).tilefarm.geometry())) as Geometry;
    const box = (await page.locator('#view').boundingBox())!;
    await page.mouse.move(box.x + g.originX + 456.5 * g.scale, box.y + g.originY + 123.5 * g.scale);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#readout')?.dataset.x === '456' && document.querySelector<HTMLElement>('#readout')?.dataset.y === '123', null, { timeout: 15_000 });
    expect(await page.locator('#readout').textContent()).toMatch(/z 2\/3[\s\S]*DAPI 211/);
    // And the upload itself is gone from the bucket once its ingest ended.
    const deadline = Date.now() + 20_000;
    while (uploadFiles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(uploadFiles()).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 360_000);

  it('a file dropped on the page and cancelled mid-way leaves no object in the bucket', async () => {
    // Rendered tiles of the picture on screen may still be arriving: everything else must stay as it was.
    const notTiles = () => system.storedFiles().filter((f) => !f.startsWith('tiles/'));
    const before = notTiles();
    // Uploads slowed to 4 MiB/s, so the cancel lands while parts are still on their way.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 4 * 2 ** 20 });
    try {
      await page.evaluate(() => {
        const file = new File([new Uint8Array(24 * 2 ** 20).fill(7)], 'Slow Scan.ome.tif', { type: 'image/tiff' });
        const dt = new DataTransfer();
        dt.items.add(file);
        document.body.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      // At least one part stored (so there is something to remove), not all of them.
      await page.waitForFunction(() => Number(document.body.dataset.uploadProgress ?? 0) > 0, null, { timeout: 60_000, polling: 50 });
      expect(await page.evaluate(() => document.body.dataset.upload)).toBe('uploading');
      const uploadId = (await page.evaluate(() => document.body.dataset.uploadId))!;
      expect(uploadId).toMatch(/^ing-slow-scan-/);
      expect(uploadFiles().length).toBeGreaterThan(0);
      await page.click('#upload-cancel');
      await page.waitForFunction(() => document.body.dataset.upload === 'cancelled', null, { timeout: 30_000 });
      expect(await page.locator('#upload span').textContent()).toBe('upload cancelled');
      // Nothing of it in the bucket: no record, no part record, no multipart part; no dataset.
      await new Promise((r) => setTimeout(r, 1000)); // a part the server was still storing lands, and is removed
      expect(uploadFiles()).toEqual([]);
      expect(notTiles()).toEqual(before);
      expect((await fetch(`${system.apiUrl}/v1/uploads/${uploadId}`)).status).toBe(404);
      expect((await fetch(`${system.apiUrl}/v1/datasets/slow-scan`)).status).toBe(404);
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    }
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
