import { readFileSync, readdirSync } from 'node:fs';
import sharp from 'sharp';
import { DatasetManifest, type SimpleAck } from '@tilefarm/contracts';
import { startLatencyProbe } from '../support/latency-probe';
import { TestSystem } from '../support/system';
import { PushViewer, percentile, postSpec, sleep, specVariant, tilesOf } from '../integration/push-viewer';

// Issue 11 item 2: one `viewport` over the whole level 0 of a 131072² slide (262,144 tiles) blocked
// the gateway 6.3 s and took it to 800 MB; three such events kept /healthz at 6 s. Here three
// sockets flood a real gateway with full-slide viewports (alternating far-apart slices, so every
// event withdraws what the last asked for) at 40 events/s each, while a separate process probes
// the gateway's /healthz and a cheap viewer of a small dataset keeps asking for new tiles.

const SLIDE = 'whole-slide';
const CHEAP = { id: 'cheap', width: 512, height: 512, sizeZ: 1, tileSize: 256 as const };
const FLOODERS = 3;
const EVENTS_PER_SECOND = 40;
const FLOOD_MS = 8000;
/** The CPU priority the test's worker runs at (see beforeAll). */
const WORKER_NICE = 10;

/** Resident set size of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024;
}

// The /healthz bound is absolute, and on this 2-core VM the machine's own noise alone has put the
// probe's idle p99 at 36-43 ms (a clean-clone CI run failed at 51.5 ms with an idle p99 of 35.9
// ms). Up to two more 8 s floods are run before the bound counts as missed; each prints its
// figures. A real regression (the stalls issue 11 fixed were seconds long) fails all three.
jest.retryTimes(2, { logErrorsBeforeRetry: true });

describe('full-slide viewport flood against a real gateway', () => {
  let system: TestSystem;
  const viewers: PushViewer[] = [];

  beforeAll(async () => {
    // The worker fails every flood tile (the slide has no pixels) at 60-90 % of a core, on the 2
    // cores the probe measures the gateway on. Workers normally run elsewhere; here WORKER_NICE
    // leaves the gateway its CPU (at 0, 4 of 10 runs put the p99 at 50.6-79.1 ms, docs/operations.md).
    system = await TestSystem.start({ gateways: 1, workers: 1, datasets: [CHEAP], env: { WORKER_NICE: String(WORKER_NICE) } });
    // The manifest of a 131072² × 3 z slide; no pixels: the gateway never reads them, and the
    // worker fails the flood's tiles at once (missing source), which is fine here.
    const manifest = DatasetManifest.parse({
      v: 1,
      id: SLIDE,
      version: 1,
      width: 131_072,
      height: 131_072,
      sizeZ: 3,
      sizeT: 1,
      tileSize: 256,
      levels: 10,
      dtype: 'uint16',
      channels: [{ label: 'DAPI', color: '#0080ff', window: [0, 4000] }],
      sourceEncoding: 'raw-deflate-v1',
      createdAt: new Date().toISOString(),
    });
    await system.catalog.publish(manifest, { v: 1, dataset: SLIDE, version: 1, planes: [] });
  }, 120_000);
  /** The gateway now serving (each attempt ends by starting a new one, see the test's end). */
  const gateway = () => [...system.processes].reverse().find((p) => p.name === 'gateway-0')!;
  afterAll(async () => {
    for (const v of viewers) v.close();
    await system?.stop();
  });

  it('runs every worker thread at WORKER_NICE and every gateway thread at 0', () => {
    // Field 19 of /proc/<pid>/task/<tid>/stat, counted after the command name's closing parenthesis.
    const niceOf = (pid: number) => readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
    const worker = niceOf(system.workers[0]!.child.pid!);
    expect(worker.length).toBeGreaterThan(4); // V8's and libuv's threads too, not only the main one
    expect(new Set(worker)).toEqual(new Set([WORKER_NICE]));
    expect(new Set(niceOf(gateway().child.pid!))).toEqual(new Set([0]));
  });

  it('keeps /healthz p99 under 50 ms and RSS under 300 MB, and a cheap viewer is still served', async () => {
    const gatewayPid = gateway().child.pid!;
    const health = `${system.gatewayUrl(0)}/healthz`;
    const slideSpec = { channels: [{ index: 0, color: '#ffffff', window: [0, 4000] }], format: 'jpeg' };

    // Baseline in the same run: the gateway idle.
    const idleProbe = startLatencyProbe(health);
    await sleep(1500);
    const idle = (await idleProbe.stop()).sort((a, b) => a - b);
    const rssBefore = rssMb(gatewayPid);

    // This attempt's sockets, closed when it ends: a retry must not start with the last attempt's
    // flooders still connected (their full-slide wants kept the gateway busy: idle p99 190-290 ms
    // before the second and third attempts of a clean-clone CI run).
    const mine: PushViewer[] = [];
    for (let i = 0; i < FLOODERS + 1; i++) mine.push(await PushViewer.open(system.gatewayUrl(0)));
    viewers.push(...mine);
    try {
      const flooders = mine.slice(0, FLOODERS);
      const cheap = mine[FLOODERS]!;

      let rssMax = rssBefore;
      const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssMb(gatewayPid))), 100);
      const probe = startLatencyProbe(health);
      const started = performance.now();
      const acks: Array<Promise<SimpleAck | 'timeout'>> = [];
      const ackMs: number[] = [];
      // The flood: full level-0 rectangles (corners past the grid, as an adversary sends them), not waiting for acks.
      const flood = (async () => {
        for (let n = 0; performance.now() - started < FLOOD_MS; n++) {
          await sleep(Math.max(0, started + (n * 1000) / EVENTS_PER_SECOND - performance.now()));
          for (const v of flooders) {
            const sent = performance.now();
            const z = n % 2 === 0 ? 0 : 2;
            acks.push(
              v.viewport({ dataset: SLIDE, spec: slideSpec, level: 0, z, t: 0, x0: 0, y0: 0, x1: 1_000_000, y1: 1_000_000 }, 60_000).then(
                (a) => (ackMs.push(performance.now() - sent), a),
                () => 'timeout' as const,
              ),
            );
          }
        }
      })();
      // The cheap viewer: a new spec (cold tiles) every second, each answered in full.
      const cheapMs: number[] = [];
      for (let round = 0; performance.now() - started < FLOOD_MS; round++) {
        const t0 = performance.now();
        const ack = await cheap.request({ dataset: CHEAP.id, spec: specVariant(100 + round), tiles: tilesOf(2, 2, 0, 1) });
        if (!ack.ok) throw new Error(JSON.stringify(ack.error));
        await cheap.waitFor([...ack.ready, ...ack.pending].map((t) => t.key), 30_000);
        cheapMs.push(performance.now() - t0);
        await sleep(Math.max(0, 1000 - (performance.now() - t0)));
      }
      await flood;
      const answered = await Promise.all(acks);
      const latencies = (await probe.stop()).sort((a, b) => a - b);
      clearInterval(rssTimer);
      rssMax = Math.max(rssMax, rssMb(gatewayPid));

      const sortedAcks = ackMs.sort((a, b) => a - b);
      const p = (xs: number[], q: number) => percentile(xs, q).toFixed(1);
      console.log(
        `viewport flood: ${acks.length} full-slide viewports from ${FLOODERS} sockets in ${Math.round(performance.now() - started)} ms ` +
          `(${answered.filter((a) => a !== 'timeout' && a.ok).length} ok, ${answered.filter((a) => a !== 'timeout' && !a.ok).length} refused, ${answered.filter((a) => a === 'timeout').length} unanswered; ack p50 ${p(sortedAcks, 50)} ms, p99 ${p(sortedAcks, 99)} ms); ` +
          `gateway /healthz (${latencies.length} sequential fetches) p50 ${p(latencies, 50)} ms, p99 ${p(latencies, 99)} ms, max ${latencies[latencies.length - 1]!.toFixed(1)} ms, idle p99 ${p(idle, 99)} ms; ` +
          `gateway RSS ${rssBefore.toFixed(0)} MB idle, ${rssMax.toFixed(0)} MB max; cheap viewer: ${cheapMs.length} rounds of 4 cold tiles, slowest ${Math.max(...cheapMs).toFixed(0)} ms`,
      );
      expect(answered.filter((a) => a === 'timeout')).toEqual([]);
      expect(latencies.length).toBeGreaterThan(50);
      expect(percentile(latencies, 99)).toBeLessThan(50);
      expect(rssMax).toBeLessThan(300);
      // The cheap viewer got every tile of every round, and they are real 256² images.
      expect(cheapMs.length).toBeGreaterThanOrEqual(3);
      expect(cheap.failed.size).toBe(0);
      const url = [...cheap.urls.values()][0]!;
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await sharp(Buffer.from(await res.arrayBuffer())).metadata()).toMatchObject({ width: 256, height: 256 });
    } finally {
      for (const v of mine) v.close();
      // A retry floods a fresh gateway. The same one would start from the last flood's high-water
      // mark: V8 keeps the heap it grew (heap used back to ~90-100 MB 3 s after each flood, heap
      // total 127, 146, 252 MB after three), so RSS climbed ~80 MB per attempt and a third
      // attempt failed the 300 MB bound on memory the first two left committed.
      await gateway().stop('SIGTERM');
      system.spawnApp('gateway-0', 'apps/gateway/dist/main.js', { GATEWAY_PORT: String(system.gatewayPorts[0]), HOST: '127.0.0.1' });
      await system.waitFor(health, 30_000);
    }
  }, 180_000);
});
