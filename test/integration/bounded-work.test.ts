import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 11 item 1: one request must not be able to freeze workers. A spec is costed where it meets
// a dataset (TilePlanner), so every door refuses what is over MAX_RENDER_COST before anything is queued.

const DATASET = { id: 'costly', width: 512, height: 512, sizeZ: 10, tileSize: 256 as const };
/** k terms `cA^cB` summed: 4k - 1 formula nodes per channel. */
const powers = (k: number) => Array.from({ length: k }, (_, i) => `c${i % 3}^c${(i + 1) % 3}`).join('+');
/** 8 channels × 255 nodes + 3 × 10 z + 8: 2,078 per pixel, 136 M per 256² tile. */
const EXPENSIVE = { channels: Array.from({ length: 8 }, () => ({ formula: powers(64), window: [0, 1] })), projection: { type: 'mean', z: [0, 9] }, format: 'png' };
/** 3 sources × 10 z + 3: 33 per pixel, 2.2 M per tile. */
const CHEAP = { channels: [{ index: 0 }, { index: 1 }, { index: 2 }], projection: { type: 'max', z: [0, 9] }, format: 'png' };

describe('bounded work per request', () => {
  let system: TestSystem;
  const api = (path: string) => `${system.apiUrl}${path}`;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, gateways: 1, datasets: [DATASET], env: { MAX_RENDER_COST: '20000000' } });
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
    expect(body.error.message).toMatch(/largest factor is formula nodes: 2040/);

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

  it('renders a spec under the ceiling', async () => {
    const id = await specId(CHEAP);
    const res = await fetch(api(`/v1/tiles/${DATASET.id}/${id}/0/0/0/0/0.png`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
  });
});
