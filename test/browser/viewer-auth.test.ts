import type { Page } from 'playwright-core';
import { TestSystem } from '../support/system';
import { canvasColours, fingerprintDistance, launchChromium, type RunningBrowser } from './browser';

// The viewer with ACCESS_TOKENS and URL_SIGNING_KEYS on: a tenant's token handed in the URL
// fragment lists, renders (server and GPU), reads signed raw pixels and saves settings, and the
// token leaves the visible URL. Real processes, real Chromium.

const TOKEN_A = 'alpha-token-0123456789abcdef';
const TOKEN_B = 'beta-token-0123456789abcdefgh';
const SIGNING_KEY = 'viewer-signing-key-0123456789abcdef0';
const DS = { width: 600, height: 400, sizeZ: 1, tileSize: 256 as const };

/** The viewer shows a picture of `dataset`, complete, with nothing loading (and the GPU layer complete where it draws). */
async function settled(page: Page, dataset: string): Promise<void> {
  await page.waitForFunction(
    (id) => {
      const d = document.body.dataset;
      const gpuSettled = d.renderMode !== 'gpu' || d.gpuComplete === 'true';
      return d.complete === 'true' && d.busy === 'false' && (d.shown ?? '').startsWith(`${id}/`) && gpuSettled;
    },
    dataset,
    { timeout: 60_000, polling: 50 },
  );
}

describe('viewer with access tokens and signed URLs', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({
      workers: 1,
      datasets: [
        { id: 'alpha-cells', tenant: 'alpha', ...DS },
        { id: 'beta-cells', tenant: 'beta', ...DS },
        { id: 'shared', ...DS },
      ],
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta`, URL_SIGNING_KEYS: SIGNING_KEY },
    });
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  async function open(url: string): Promise<{ page: Page; responses: Array<{ url: string; status: number }> }> {
    const page = await chromium.browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const responses: Array<{ url: string; status: number }> = [];
    page.on('response', (r) => responses.push({ url: r.url(), status: r.status() }));
    await page.goto(url);
    return { page, responses };
  }

  it('lists the tenant\'s and public datasets, renders server-side and on the GPU from signed /zarr/ reads, saves settings, and hides the token', async () => {
    // Server-rendered picture: the tile URLs the gateway announces are signed.
    const server = await open(`${system.apiUrl}/?render=server#d=alpha-cells&token=${TOKEN_A}`);
    await settled(server.page, 'alpha-cells');
    const options = await server.page.$$eval('#dataset option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options.sort()).toEqual(['alpha-cells', 'shared']);
    expect(server.page.url()).not.toContain('token');
    expect(server.page.url()).toContain('d=alpha-cells');
    expect(await server.page.evaluate(() => sessionStorage.getItem('tilefarm.accessToken'))).toBe(TOKEN_A);
    const tileResponses = server.responses.filter((r) => /\/(v1\/)?tiles\//.test(r.url));
    expect(tileResponses.length).toBeGreaterThan(0);
    expect(tileResponses.filter((r) => r.status !== 200)).toEqual([]);
    const serverPicture = await canvasColours(server.page);
    expect(serverPicture.lit).toBeGreaterThan(serverPicture.width * serverPicture.height * 0.1);

    // The share link carries the view, never the token.
    await server.page.click('#share');
    const link = await server.page.evaluate(() => document.getElementById('share')?.dataset.link ?? '');
    expect(link).toContain('d=alpha-cells');
    expect(link).not.toContain(TOKEN_A);
    expect(link).not.toContain('token');

    // Saving the dataset's default look: the tenant owns it.
    const saved = { name: 'default' };
    server.page.on('dialog', (d) => void d.accept(saved.name));
    await server.page.click('#save-settings');
    await server.page.waitForFunction(() => [...document.querySelectorAll('#saved option')].some((o) => (o as HTMLOptionElement).value === 'default'), null, { timeout: 20_000 });
    const settings = (await (await fetch(`${system.apiUrl}/v1/datasets/alpha-cells/settings`, { headers: { authorization: `Bearer ${TOKEN_A}` } })).json()) as { settings: Array<{ name: string }> };
    expect(settings.settings.map((s) => s.name)).toContain('default');
    await server.page.close();

    // GPU mode: raw pixels from the signed /zarr/ root, every read answered 200.
    const gpu = await open(`${system.apiUrl}/#d=alpha-cells&token=${TOKEN_A}`);
    await gpu.page.waitForFunction(() => document.body.dataset.gpuComplete === 'true', null, { timeout: 60_000, polling: 50 });
    await settled(gpu.page, 'alpha-cells');
    expect(gpu.page.url()).not.toContain('token');
    const zarr = gpu.responses.filter((r) => r.url.includes('/zarr/'));
    expect(zarr.length).toBeGreaterThan(0);
    expect(zarr.filter((r) => r.status !== 200 || !/[?&]sig=/.test(r.url))).toEqual([]);
    expect(zarr.filter((r) => r.url.includes('access_token'))).toEqual([]);
    // The GPU's picture is the server's (same saved default spec, same view).
    const gpuPicture = await canvasColours(gpu.page);
    expect(fingerprintDistance(gpuPicture, serverPicture)).toBeLessThan(4);
    await gpu.page.close();
    expect(pageErrors).toEqual([]);
  }, 180_000);

  it('asks for a token when the API answers 401, then lists that tenant\'s datasets', async () => {
    const asked: string[] = [];
    const page = await chromium.browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on('dialog', (d) => {
      asked.push(d.message());
      void d.accept(TOKEN_B);
    });
    await page.goto(`${system.apiUrl}/?render=server`);
    await page.waitForFunction(() => document.querySelectorAll('#dataset option').length > 0, null, { timeout: 30_000 });
    const options = await page.$$eval('#dataset option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options.sort()).toEqual(['beta-cells', 'shared']);
    expect(asked).toHaveLength(1);
    await settled(page, options.sort()[0]!);
    await page.close();
  }, 90_000);
});
