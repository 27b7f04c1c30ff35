import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 11 item 1: one request must not be able to freeze workers. A spec is costed where it meets
// a dataset (TilePlanner), so every door refuses what is over MAX_RENDER_COST before anything is queued.

const DATASET = { id: 'costly', width: 512, height: 512, sizeZ: 10, tileSize: 256 as const };
/** k terms `cA^cB` summed: 4k - 1 formula nodes per channel. */
const powers = (k: number) => Array.from({ length: k }, (_, i) => `c${i % 3}^c${(i + 1) % 3}`).join('+');
const formulas = (n: number) => ({ channels: Array.from({ length: n }, () => ({ formula: powers(64), window: [0, 1] })), projection: { type: 'mean', z: [0, 9] }, format: 'png' });
/** The spec: 64 channels × 255 nodes + 3 sources × 10 z + 64 = 16,414 per pixel, 1.08e9 per 256² tile: over the ceiling. */
const EXPENSIVE = formulas(64);
/** 48 channels: 12,318 per pixel, 8.1e8 per tile: under the ceiling, and seconds of compositing (over RENDER_TIMEOUT_MS). */
const SLOW = formulas(48);
/** 3 sources × 10 z + 3: 33 per pixel, 2.2 M per tile. */
const CHEAP = { channels: [{ index: 0 }, { index: 1 }, { index: 2 }], projection: { type: 'max', z: [0, 9] }, format: 'png' };

describe('bounded work per request', () => {
  let system: TestSystem;
  const api = (path: string) => `${system.apiUrl}${path}`;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, gateways: 1, datasets: [DATASET], env: { MAX_RENDER_COST: '1000000000', RENDER_TIMEOUT_MS: '1500' } });
  }, 120_000);
  afterAll(() => system?.stop());

  async function specId(spec: unknown): Promise<string> {
    const res = await fetch(api('/v1/specs'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  it('refuses a spec over MAX_RENDER_COST with 400 spec_too_expensive naming the factor, on /v1/tiles, IIIF and the socket', async () => {
    const id = await specId(EXPENSIVE);
    const res = await fetch(api(`/v1/tiles/${DATASET.id}/${id}/0/0/0/0/0.png`));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('spec_too_expensive');
    expect(body.error.message).toMatch(/largest factor is formula nodes: 16320/);

    const iiif = await fetch(api(`/iiif/3/${DATASET.id}~${id}/0,0,256,256/256,/0/default.png`));
    expect(iiif.status).toBe(400);
    expect(await iiif.text()).toMatch(/spec_too_expensive|formula nodes/);

    const viewer = new TestViewer(system.gatewayUrl(0));
    try {
      await viewer.connected();
      const ack = await viewer.request({ dataset: DATASET.id, spec: EXPENSIVE, tiles: [{ level: 0, z: 0, t: 0, x: 0, y: 0 }] });
      expect(ack).toMatchObject({ ok: false, error: { code: 'spec_too_expensive' } });
    } finally {
      viewer.close();
    }
    // Nothing was queued for it.
    expect(await system.workerCounter('tilefarm_renders_total')).toBe(0);
  });

  it('refuses a spec over the ceiling where it is saved for a dataset: render settings and POST /v1/specs?dataset=', async () => {
    const put = (spec: unknown) => fetch(api(`/v1/datasets/${DATASET.id}/settings/heavy`), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec }) });
    const refused = await put(EXPENSIVE);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'spec_too_expensive', message: expect.stringMatching(/formula nodes: 16320/) });
    const list = (await (await fetch(api(`/v1/datasets/${DATASET.id}/settings`))).json()) as { settings: unknown[] };
    expect(list.settings).toEqual([]);
    expect((await put(CHEAP)).status).toBe(200);

    const post = (spec: unknown, query: string) => fetch(api(`/v1/specs${query}`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    const againstDataset = await post(EXPENSIVE, `?dataset=${DATASET.id}`);
    expect(againstDataset.status).toBe(400);
    expect(((await againstDataset.json()) as { error: { code: string } }).error.code).toBe('spec_too_expensive');
    expect((await post(CHEAP, `?dataset=${DATASET.id}`)).status).toBe(201);
    expect((await post(CHEAP, '?dataset=nope')).status).toBe(404);
    // Without a dataset the cost is not known yet: stored, and judged where it meets one.
    expect((await post(EXPENSIVE, '')).status).toBe(201);
  });

  it('renders a spec under the ceiling', async () => {
    const id = await specId(CHEAP);
    const res = await fetch(api(`/v1/tiles/${DATASET.id}/${id}/0/0/0/0/0.png`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
  });

  it('stops a render at RENDER_TIMEOUT_MS (once, not retried) with tile:failed render_timeout, the worker answering /healthz meanwhile; a repeated ask fails at once', async () => {
    const worker = system.workers[0]!;
    const port = /"metricsPort":(\d+)/.exec(worker.output.join(''))?.[1];
    expect(port).toBeDefined();
    const viewer = new TestViewer(system.gatewayUrl(0));
    try {
      await viewer.connected();
      const started = Date.now();
      const ack = await viewer.request({ dataset: DATASET.id, spec: SLOW, tiles: [{ level: 0, z: 0, t: 0, x: 1, y: 1 }] });
      if (!ack.ok) throw new Error(JSON.stringify(ack));
      const key = ack.pending[0]!.key;
      const health: number[] = [];
      let done = false;
      const probe = (async () => {
        while (!done) {
          const t0 = performance.now();
          const res = await fetch(`http://127.0.0.1:${port}/healthz`);
          await res.arrayBuffer();
          health.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await viewer.waitFor([key], 20_000);
      const took = Date.now() - started;
      done = true;
      await probe;
      expect(viewer.failed.get(key)).toMatchObject({ code: 'render_timeout' });
      // One attempt of 1.5 s, not four (plus backoff) as when timeouts were retried.
      expect(took).toBeLessThan(4500);
      health.sort((a, b) => a - b);
      expect(health.length).toBeGreaterThan(10);
      expect(health[Math.floor(health.length * 0.95)]!).toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await system.workerCounter('tilefarm_render_failures_total')).toBe(1);

      // Remembered (FAILED_TILE_MEMORY_S): asked again over the socket or HTTP, the tile fails at
      // once, on every process, without another render of RENDER_TIMEOUT_MS.
      const again = new TestViewer(system.gatewayUrl(0));
      try {
        await again.connected();
        const t0 = Date.now();
        const ack2 = await again.request({ dataset: DATASET.id, spec: SLOW, tiles: [{ level: 0, z: 0, t: 0, x: 1, y: 1 }] });
        if (!ack2.ok) throw new Error(JSON.stringify(ack2));
        expect(ack2.pending.map((p) => p.key)).toEqual([key]);
        await again.waitFor([key], 5000);
        expect(again.failed.get(key)).toMatchObject({ code: 'render_timeout', message: expect.stringMatching(/not tried again for 60 s/) });
        expect(Date.now() - t0).toBeLessThan(1000);
      } finally {
        again.close();
      }
      const t1 = Date.now();
      const http = await fetch(api(`/v1/tiles/${DATASET.id}/${await specId(SLOW)}/0/0/0/1/1.png`));
      expect(http.status).toBe(504);
      expect(((await http.json()) as { error: { code: string } }).error.code).toBe('render_timeout');
      expect(Date.now() - t1).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 500));
      expect(await system.workerCounter('tilefarm_render_failures_total')).toBe(1);
    } finally {
      viewer.close();
    }
  });
});
