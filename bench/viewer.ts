/**
 * npm run bench:viewer: the viewer in Chromium against the whole system, hybrid vs server-only,
 * same run, same dataset.
 *
 *   first full viewport - page load (navigation start) until every visible tile of the first
 *                         (server-rendered) picture is drawn; the spec's windows are new every run,
 *                         so these renders are cold. Then until the GPU layer is complete too.
 *   contrast changes    - CHANGES window changes through the channel panel's input (as a user's):
 *     hybrid            - input event → the new picture finished on the GPU (WebGL2, here
 *                         SwiftShader: Chromium's CPU rasterizer), and → the next animation frame;
 *     server-only       - the same page with ?render=server: input event → the new server-rendered
 *                         picture complete on screen (spec registered, tiles rendered cold,
 *                         delivered over the socket, drawn).
 * It is a report, not a test: nothing here fails. The machine's load average is printed with it.
 */
import { cpus, loadavg } from 'node:os';
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/browser/browser';
import { TestSystem } from '../test/support/system';

const CHANGES = Number(process.env.CHANGES ?? 50);
const SERVER_CHANGES = Number(process.env.SERVER_CHANGES ?? 12);
const DATASET = { id: 'viewer-bench', width: 2048, height: 1536, sizeZ: 3 };

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

const run = Date.now() % 100_000; // new windows every run: cold renders
function link(extraLo: number): string {
  const spec = {
    v: 1,
    channels: [
      { index: 0, color: '#0080ff', window: [100 + (run % 97), 2500 + extraLo] },
      { index: 1, color: '#00ff00', window: [120 + (run % 89), 1800 + extraLo] },
      { index: 2, color: '#ff0000', window: [110 + (run % 83), 3000 + extraLo] },
    ],
  };
  return `#d=${DATASET.id}&z=1&s=${Buffer.from(JSON.stringify(spec)).toString('base64url')}`;
}

async function firstViewport(page: Page, url: string): Promise<{ serverMs: number; gpuMs: number | undefined }> {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.complete === 'true', null, { timeout: 120_000, polling: 20 });
  const serverMs = Date.now() - t0;
  const gpu = await page
    .waitForFunction(() => document.body.dataset.gpuComplete === 'true', null, { timeout: 60_000, polling: 20 })
    .then(() => Date.now() - t0)
    .catch(() => undefined);
  return { serverMs, gpuMs: gpu };
}

async function hybridChanges(page: Page): Promise<{ gpu: number[]; frame: number[] }> {
  await page.waitForFunction(() => document.body.dataset.gpuPending === '0' && document.body.dataset.busy === 'false', null, { timeout: 120_000, polling: 100 });
  return page.evaluate(async (n) => {
    const lo = document.querySelector<HTMLInputElement>('[data-channel="1"] .ch-lo')!;
    const hybrid = (window as unknown as { tilefarm: { hybrid: { sync(): void } } }).tilefarm.hybrid;
    const gpu: number[] = [];
    const frame: number[] = [];
    for (let i = 0; i < n; i++) {
      lo.value = String(150 + ((i * 53) % 900));
      const t0 = performance.now();
      lo.dispatchEvent(new Event('change'));
      hybrid.sync();
      gpu.push(performance.now() - t0);
      await new Promise(requestAnimationFrame);
      frame.push(performance.now() - t0);
    }
    return { gpu, frame };
  }, CHANGES);
}

async function serverChanges(page: Page): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SERVER_CHANGES; i++) {
    const before = await page.evaluate(() => document.body.dataset.shown ?? '');
    const ms = await page.evaluate(
      async ({ i, before }) => {
        const lo = document.querySelector<HTMLInputElement>('[data-channel="1"] .ch-lo')!;
        lo.value = String(160 + ((i * 61) % 900));
        const t0 = performance.now();
        lo.dispatchEvent(new Event('change'));
        const body = document.body.dataset;
        while (!(body.shown !== before && body.complete === 'true')) await new Promise(requestAnimationFrame);
        return performance.now() - t0;
      },
      { i, before },
    );
    out.push(ms);
  }
  return out;
}

async function main(): Promise<void> {
  const load0 = loadavg()[0]!;
  const chromium = await launchChromium();
  const system = await TestSystem.start({ workers: 2, datasets: [DATASET] });
  try {
    const hybridPage = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    const hybridFirst = await firstViewport(hybridPage, `${system.apiUrl}/${link(0)}`);
    const hybrid = await hybridChanges(hybridPage);
    await hybridPage.close();

    const serverPage = await chromium.browser.newPage({ viewport: { width: 1280, height: 820 } });
    const serverFirst = await firstViewport(serverPage, `${system.apiUrl}/?render=server${link(7)}`);
    const server = await serverChanges(serverPage);
    await serverPage.close();

    const f = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? 'n/a' : `${v.toFixed(0)} ms`);
    console.log(`\nbench:viewer — ${DATASET.width}×${DATASET.height}, 3 × uint16, 1280×820 page, Chromium headless (WebGL2 via SwiftShader); load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`);
    console.log('| measure | hybrid | server-only | server ÷ hybrid |');
    console.log('|---|---|---|---|');
    console.log(`| page load → first full viewport (server picture, cold renders) | ${f(hybridFirst.serverMs)} | ${f(serverFirst.serverMs)} | |`);
    console.log(`| page load → GPU layer complete | ${f(hybridFirst.gpuMs)} | — | |`);
    const hp50 = pct(hybrid.gpu, 50);
    const hp95 = pct(hybrid.gpu, 95);
    const sp50 = pct(server, 50);
    const sp95 = pct(server, 95);
    console.log(`| contrast change → new picture, p50 (n = ${CHANGES} / ${SERVER_CHANGES}) | ${f(hp50)} | ${f(sp50)} | ${(sp50 / hp50).toFixed(1)}× |`);
    console.log(`| contrast change → new picture, p95 | ${f(hp95)} | ${f(sp95)} | ${(sp95 / hp95).toFixed(1)}× |`);
    console.log(`| contrast change → next animation frame, p50 / p95 | ${f(pct(hybrid.frame, 50))} / ${f(pct(hybrid.frame, 95))} | | |`);
  } finally {
    await chromium.close();
    await system.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
