import sharp from 'sharp';
import { PrivateRedis } from '../support/private-redis';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 7: Redis dies (SIGKILL, nothing persisted) in the middle of a burst and comes back empty.
// While it is down the API answers at once (503 where it needs Redis, 200 where it does not);
// afterwards every process resumes by itself and every tile of the burst is delivered.

const DATASET = { id: 'outage', width: 512, height: 512, sizeZ: 2, tileSize: 256 as const, dtype: 'uint8' as const };
const POSITIONS = [0, 1].flatMap((z) => [
  { level: 0, z, t: 0, x: 0, y: 0 },
  { level: 0, z, t: 0, x: 1, y: 0 },
  { level: 0, z, t: 0, x: 0, y: 1 },
  { level: 0, z, t: 0, x: 1, y: 1 },
  { level: 1, z, t: 0, x: 0, y: 0 },
]);
const specFor = (s: number) => ({ channels: [{ index: 0, color: '#ff0000', window: [0, 60 + s] }, { index: 2, color: '#0000ff', window: [0, 90] }], format: 'jpeg' });

interface Probe {
  what: string;
  status: number;
  ms: number;
}

describe('Redis killed and restarted mid-burst', () => {
  let redis: PrivateRedis;
  let system: TestSystem;
  let viewer: TestViewer | undefined;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    system = await TestSystem.start({ workers: 2, redisUrl: redis.url, datasets: [DATASET], env: { RENDER_LOCK_MS: '2000', WORKER_CONCURRENCY: '1' } });
  }, 120_000);
  afterAll(async () => {
    viewer?.close();
    await system?.stop();
    await redis?.kill();
  });

  it('answers 503 at once while Redis is down, then resumes and completes the burst', async () => {
    viewer = new TestViewer(system.gatewayUrl(0));
    await viewer.connected();
    const keys: string[] = [];
    // A stored tile, to show storage-only requests keep working during the outage.
    const warm = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${encodeURIComponent(await specId(99))}/1/0/0/0/0.jpeg`);
    expect(warm.status).toBe(200);
    const warmUrl = warm.url;

    // The burst: 40 specs × 10 positions = 400 renders, asked for over the socket.
    for (let s = 0; s < 40; s++) {
      const ack = await viewer.request({ dataset: DATASET.id, spec: specFor(s), tiles: POSITIONS });
      if (!ack.ok) throw new Error(JSON.stringify(ack.error));
      keys.push(...ack.ready.map((r) => r.key), ...ack.pending.map((p) => p.key));
    }
    while (viewer.delivered.size < 40) await new Promise((r) => setTimeout(r, 20));

    await redis.kill();
    const downAt = Date.now();
    const deliveredAtKill = viewer.delivered.size;
    const probes: Probe[] = [];
    const probe = async (what: string, url: string) => {
      const t0 = Date.now();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        probes.push({ what, status: res.status, ms: Date.now() - t0 });
      } catch {
        probes.push({ what, status: 0, ms: Date.now() - t0 }); // a hang (aborted) or a dropped connection
      }
    };
    let n = 0;
    let socketDuringOutage: { ok: boolean; code?: string; ms: number } | undefined;
    while (Date.now() - downAt < 4000) {
      n++;
      const spec = await specId(200 + n);
      await Promise.all([
        probe('readyz', `${system.apiUrl}/readyz`),
        probe('healthz', `${system.apiUrl}/healthz`),
        probe('datasets', `${system.apiUrl}/v1/datasets`),
        probe('stored tile', warmUrl),
        probe('new tile', `${system.apiUrl}/v1/tiles/${DATASET.id}/${spec}/0/0/0/1/1.jpeg`),
        probe('new tile wait=0', `${system.apiUrl}/v1/tiles/${DATASET.id}/${spec}/0/1/0/1/1.jpeg?wait=0`),
      ]);
      if (!socketDuringOutage) {
        const t0 = Date.now();
        const ack = await viewer.request({ dataset: DATASET.id, spec: specFor(500), tiles: [{ level: 1, z: 0, t: 0, x: 0, y: 0 }] });
        socketDuringOutage = { ok: ack.ok, code: ack.ok ? undefined : ack.error.code, ms: Date.now() - t0 };
        if (ack.ok) keys.push(...ack.ready.map((r) => r.key), ...ack.pending.map((p) => p.key));
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await redis.resume();
    const upAt = Date.now();

    // Every process resumes by itself: the API turns ready, the burst completes, new work flows.
    await system.waitFor(`${system.apiUrl}/readyz`, 30_000);
    const apiReadyMs = Date.now() - upAt;
    await viewer.waitFor(keys, 90_000);
    const burstDoneMs = Date.now() - upAt;
    expect(viewer.failed.size).toBe(0);
    const fresh = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${await specId(900)}/0/0/0/0/0.jpeg`, { signal: AbortSignal.timeout(20_000) });
    expect(fresh.status).toBe(200);
    const { info } = await sharp(Buffer.from(await fresh.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);
    const after = await viewer.request({ dataset: DATASET.id, spec: specFor(901), tiles: [{ level: 0, z: 1, t: 0, x: 1, y: 1 }] });
    expect(after.ok).toBe(true);
    if (after.ok) await viewer.waitFor([...after.ready, ...after.pending].map((t) => t.key), 20_000);
    for (const url of keys.slice(0, 50).map((k) => viewer!.delivered.get(k)!)) expect((await fetch(url)).status).toBe(200);
    // No process died: the workers that were running before the outage are the ones that finished the burst.
    for (const p of system.processes) expect([p.name, p.child.exitCode, p.child.signalCode]).toEqual([p.name, null, null]);

    const maxMs = Math.max(...probes.map((p) => p.ms));
    const statuses = (what: string) => [...new Set(probes.filter((p) => p.what === what).map((p) => p.status))].sort();
    const figures = {
      outageMs: upAt - downAt,
      requestsDuringOutage: probes.length,
      slowestRequestMs: maxMs,
      hung: probes.filter((p) => p.status === 0).length,
      readyz: statuses('readyz'),
      newTile: statuses('new tile'),
      newTileWait0: statuses('new tile wait=0'),
      storedTile: statuses('stored tile'),
      datasets: statuses('datasets'),
      socketAckDuringOutage: socketDuringOutage,
      tilesInBurst: keys.length,
      deliveredBeforeKill: deliveredAtKill,
      tilesLost: keys.filter((k) => !viewer!.delivered.has(k)).length,
      apiReadyAfterRestartMs: apiReadyMs,
      burstDoneAfterRestartMs: burstDoneMs,
    };
    console.log(`FAULT FIGURES redis restart: ${JSON.stringify(figures)}`);
    expect(figures.hung).toBe(0);
    expect(maxMs).toBeLessThan(2000);
    expect(figures.readyz).toEqual([503]);
    expect(figures.newTile).toEqual([503]);
    expect(figures.newTileWait0).toEqual([503]);
    expect(figures.storedTile).toEqual([200]);
    expect(figures.datasets).toEqual([200]);
    expect(socketDuringOutage?.ok === false ? socketDuringOutage.code : 'unavailable').toBe('unavailable');
    expect(socketDuringOutage!.ms).toBeLessThan(2000);
    expect(figures.tilesLost).toBe(0);
  }, 240_000);

  /** Spec ids without touching Redis: POST /v1/specs only needs storage. */
  async function specId(s: number): Promise<string> {
    const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(specFor(s)) });
    if (res.status !== 201) throw new Error(`spec: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }
});
