import { startLatencyProbe } from '../support/latency-probe';
import { TestSystem } from '../support/system';
import { PushViewer, percentile, specVariant, type RequestedTile } from './push-viewer';

// Issue 5, the original failure: while a render storm runs, the web tier must keep answering.
// Renders happen in worker processes, so the API's health check stays fast however many tiles
// are being rendered. Latency is measured from a separate process (a loop of sequential fetches),
// so the test process's own socket traffic does not colour the figure.

const DATASET = { id: 'grid', width: 512, height: 512, sizeZ: 6, tileSize: 256 as const };
function gridTiles(): RequestedTile[] {
  const out: RequestedTile[] = [];
  for (let z = 0; z < 5; z++) {
    for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) out.push({ level: 0, z, t: 0, x, y });
    out.push({ level: 1, z, t: 0, x: 0, y: 0 });
  }
  return out;
}

describe('push delivery under a render storm', () => {
  let system: TestSystem;
  const viewers: PushViewer[] = [];

  beforeAll(async () => {
    system = await TestSystem.start({ gateways: 1, workers: 2, datasets: [DATASET] });
  }, 90_000);
  afterAll(async () => {
    for (const v of viewers) v.close();
    await system?.stop();
  });

  it('20 viewers, 2,000 distinct cold tiles: every tile arrives and GET /healthz keeps p99 < 50 ms', async () => {
    for (let i = 0; i < 20; i++) viewers.push(await PushViewer.open(system.gatewayUrl(0)));
    const idle = startLatencyProbe(`${system.apiUrl}/healthz`);
    await new Promise((r) => setTimeout(r, 1000));
    const idleLatencies = await idle.stop();
    const before = await system.workerCounter('tilefarm_renders_total');
    const probe = startLatencyProbe(`${system.apiUrl}/healthz`);
    const started = performance.now();
    const keysByViewer = await Promise.all(
      viewers.map(async (v, i) => {
        const acks = await Promise.all([0, 1, 2, 3].map((s) => v.request({ dataset: DATASET.id, spec: specVariant(i * 4 + s), tiles: gridTiles() })));
        return acks.flatMap((a) => (a.ok ? [...a.ready, ...a.pending].map((t) => t.key) : []));
      }),
    );
    expect(new Set(keysByViewer.flat()).size).toBe(2000);
    await Promise.all(viewers.map((v, i) => v.waitFor(keysByViewer[i]!, 120_000)));
    const stormMs = performance.now() - started;
    const latencies = (await probe.stop()).sort((a, b) => a - b);
    const renders = (await system.workerCounter('tilefarm_renders_total')) - before;
    const idleSorted = idleLatencies.sort((a, b) => a - b);
    const p = (q: number) => percentile(latencies, q).toFixed(1);
    console.log(
      `render storm: ${renders} renders in ${Math.round(stormMs)} ms (${Math.round((renders / stormMs) * 1000)} tiles/s); ` +
        `GET /healthz during the storm (${latencies.length} sequential fetches): p50 ${p(50)} ms, p95 ${p(95)} ms, p99 ${p(99)} ms, max ${latencies[latencies.length - 1]!.toFixed(1)} ms; ` +
        `idle p99 ${percentile(idleSorted, 99).toFixed(1)} ms`,
    );
    expect(renders).toBe(2000);
    expect(latencies.length).toBeGreaterThan(50);
    expect(percentile(latencies, 99)).toBeLessThan(50);
  }, 180_000);
});
