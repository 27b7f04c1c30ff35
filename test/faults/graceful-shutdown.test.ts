import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 7: SIGTERM stops taking work, finishes what runs within a bound, closes connections and
// exits 0 — for the API (with a tile request in flight), the gateway (with a viewer connected)
// and a worker (while rendering).

const DATASET = { id: 'drain', width: 512, height: 512, sizeZ: 2, tileSize: 256 as const, dtype: 'uint8' as const };
const SPEC = { channels: [{ index: 0, color: '#ffffff', window: [0, 200] }], format: 'png' };

describe('graceful shutdown on SIGTERM', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, datasets: [DATASET], env: { SHUTDOWN_TIMEOUT_MS: '5000' } });
  }, 120_000);
  afterAll(() => system?.stop());

  it('worker, gateway and API each exit 0 within the bound, finishing work in flight', async () => {
    const viewer = new TestViewer(system.gatewayUrl(0));
    await viewer.connected();
    // Work in flight everywhere: a viewer waiting for tiles, an HTTP request waiting for its render.
    const ack = await viewer.request({ dataset: DATASET.id, spec: SPEC, tiles: [0, 1].flatMap((z) => [0, 1].map((x) => ({ level: 0, z, t: 0, x, y: 0 }))) });
    expect(ack.ok).toBe(true);
    const inFlight = fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${ack.ok ? ack.specId : ''}/0/1/0/1/1.png`);

    const worker = system.workers[0]!;
    const t0 = Date.now();
    const workerExit = await worker.stop('SIGTERM');
    const workerMs = Date.now() - t0;

    // A fresh worker finishes what the first left, so the API's waiting request completes.
    system.addWorker();
    const res = await inFlight;
    expect(res.status).toBe(200);
    if (ack.ok) await viewer.waitFor(ack.pending.map((p) => p.key), 30_000);

    const gateway = system.processes.find((p) => p.name === 'gateway-0')!;
    let disconnected = false;
    viewer.socket.on('disconnect', () => (disconnected = true));
    const t1 = Date.now();
    const gatewayExit = await gateway.stop('SIGTERM');
    const gatewayMs = Date.now() - t1;
    viewer.socket.io.opts.reconnection = false;
    viewer.close();

    // The API: readiness turns 503 while an HTTP request still in flight is answered.
    const api = system.processes.find((p) => p.name === 'api')!;
    const slow = fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${ack.ok ? ack.specId : ''}/1/1/0/0/0.png`);
    await new Promise((r) => setTimeout(r, 20));
    const t2 = Date.now();
    const apiExiting = api.stop('SIGTERM');
    const slowRes = await slow;
    const apiExit = await apiExiting;
    const apiMs = Date.now() - t2;

    console.log(`FAULT FIGURES graceful shutdown: ${JSON.stringify({ workerExit, workerMs, gatewayExit, gatewayMs, viewerDisconnected: disconnected, apiExit, apiMs, inFlightDuringApiStop: slowRes.status })}`);
    expect([workerExit, gatewayExit, apiExit]).toEqual([0, 0, 0]);
    expect(disconnected).toBe(true);
    expect(slowRes.status).toBe(200);
    // Each drain ends when its work does, not at the 5 s bound.
    for (const ms of [workerMs, gatewayMs, apiMs]) expect(ms).toBeLessThan(4000);
  }, 90_000);
});
