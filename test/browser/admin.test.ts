import type { Page } from 'playwright-core';
import { TestSystem } from '../support/system';
import { launchChromium, type RunningBrowser } from './browser';

const TOKEN = 'admin-token-for-tests-0123456789';

/** Sample names on a /metrics page; per-stage samples also as `name{stage=x}`. */
async function metricNames(url: string): Promise<Set<string>> {
  const text = await (await fetch(url)).text();
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s/.exec(line);
    if (!m?.[1]) continue;
    names.add(m[1]);
    const stage = /stage="([^"]+)"/.exec(m[2] ?? '')?.[1];
    if (stage) names.add(`${m[1]}{stage=${stage}}`);
  }
  return names;
}

describe('admin view: queue dashboard behind a token, Prometheus metrics on every process', () => {
  let system: TestSystem;
  let chromium: RunningBrowser;
  let page: Page;

  beforeAll(async () => {
    chromium = await launchChromium();
    system = await TestSystem.start({ workers: 1, env: { ADMIN_TOKEN: TOKEN }, datasets: [{ id: 'demo', width: 512, height: 512, sizeZ: 2 }] });
    page = await chromium.browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await system?.stop();
  }, 60_000);

  it('refuses the dashboard without the token, or with a wrong one (401)', async () => {
    const none = await fetch(`${system.apiUrl}/admin/queues`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const wrong = await fetch(`${system.apiUrl}/admin/queues`, { headers: { authorization: 'Bearer not-the-token-at-all-000000' } });
    expect(wrong.status).toBe(401);
    const api = await fetch(`${system.apiUrl}/admin/queues/api/queues`);
    expect(api.status).toBe(401);
    const wrongQuery = await fetch(`${system.apiUrl}/admin/queues?token=nope`);
    expect(wrongQuery.status).toBe(401);
    expect(wrongQuery.headers.get('set-cookie')).toBeNull();
  });

  it('serves the bull-board dashboard with the token as a Bearer header (200, HTML)', async () => {
    const res = await fetch(`${system.apiUrl}/admin/queues`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toMatch(/bull-board|Bull Dashboard/i);
    const queues = await fetch(`${system.apiUrl}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(queues.status).toBe(200);
    expect(JSON.stringify(await queues.json())).toContain('"render"');
  });

  it('loads in a browser from ?token= (the cookie carries it to the dashboard’s own requests) and lists the render queue', async () => {
    const queueApi: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/admin/queues/api/')) queueApi.push(r.status());
    });
    const res = await page.goto(`${system.apiUrl}/admin/queues?token=${TOKEN}`);
    expect(res?.status()).toBe(200);
    await page.getByText('render', { exact: false }).first().waitFor({ timeout: 20_000 });
    expect(queueApi.length).toBeGreaterThan(0);
    expect(queueApi.every((s) => s === 200)).toBe(true);
  }, 60_000);

  it('exposes the issue’s metrics on the API, the gateway and the worker', async () => {
    // One render through the HTTP API, so the worker's per-stage histogram has samples.
    const spec = await (await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: [{ index: 0 }] }) })).json() as { id: string };
    const tile = await fetch(`${system.apiUrl}/v1/tiles/demo/${spec.id}/0/0/0/0/0.jpeg`);
    expect(tile.status).toBe(200);

    const api = await metricNames(`${system.apiUrl}/metrics`);
    const gateway = await metricNames(`${system.gatewayUrl(0)}/metrics`);
    const port = /"metricsPort":(\d+)/.exec(system.workers[0]!.output.join(''))?.[1];
    expect(port).toBeDefined();
    const worker = await metricNames(`http://127.0.0.1:${port}/metrics`);

    for (const stage of ['read', 'composite', 'encode', 'store']) expect(worker).toContain(`tilefarm_render_stage_seconds_count{stage=${stage}}`);
    expect(worker).toContain('tilefarm_queue_wait_seconds_count');
    expect(worker).toContain('tilefarm_source_cache_bytes');
    expect(worker).toContain('tilefarm_source_cache_hits_total');
    expect(api).toContain('tilefarm_queue_depth');
    expect(api).toContain('tilefarm_tile_cache_hits_total');
    expect(gateway).toContain('tilefarm_queue_depth');
    expect(gateway).toContain('tilefarm_coalesced_requests_total');
    expect(gateway).toContain('tilefarm_cancelled_jobs_total');
    expect(gateway).toContain('tilefarm_tile_cache_hits_total');
    expect(gateway).toContain('tilefarm_connected_viewers');
    for (const names of [api, gateway, worker]) expect(names).toContain('process_resident_memory_bytes');
  }, 60_000);
});
