/**
 * `npm run bench:viewport`: what full-slide viewports cost a real gateway (issue 11 item 2; the
 * goals: gateway /healthz p99 < 50 ms, RSS < 300 MB), against baselines measured in the same run.
 *
 * Starts the built system (api, 1 gateway, 1 worker) on a unique Redis prefix, publishes the
 * manifest of a 131072² × 3 z slide (262,144 level-0 tiles; no pixels: the worker fails its tiles
 * at once), and runs three phases of BENCH_SECONDS each, with a separate process probing the
 * gateway's /healthz and /proc sampling its RSS:
 *   1. idle: no socket traffic;
 *   2. screens: BENCH_FLOODERS sockets sending BENCH_EVENTS_PER_SECOND viewports each of a 8×5-tile
 *      screen (what a viewer sends), alternating z 0 and 2 at random places;
 *   3. full slide: the same sockets and rate, every viewport over all of level 0.
 * A report, not a test (test/faults/viewport-flood.test.ts holds the bounds).
 */
import { readFileSync } from 'node:fs';
import { io, type Socket } from 'socket.io-client';
import { DatasetManifest, SOCKET_PROTOCOL, type ClientToServerEvents, type ServerToClientEvents } from '@tilefarm/contracts';
import { startLatencyProbe } from '../test/support/latency-probe';
import { TestSystem } from '../test/support/system';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const FLOODERS = Number(process.env.BENCH_FLOODERS ?? 3);
const RATE = Number(process.env.BENCH_EVENTS_PER_SECOND ?? 40);
const SLIDE = 'bench-slide';
const SPEC = { channels: [{ index: 0, color: '#ffffff', window: [0, 4000] }], format: 'jpeg' };

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;

type ViewportMaker = (n: number) => { x0: number; y0: number; x1: number; y1: number } | undefined;

async function phase(system: TestSystem, sockets: Array<Socket<ServerToClientEvents, ClientToServerEvents>>, pid: number, name: string, rect: ViewportMaker): Promise<string> {
  const probe = startLatencyProbe(`${system.gatewayUrl(0)}/healthz`);
  let rssMax = rssMb(pid);
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssMb(pid))), 100);
  const started = performance.now();
  const acks: Array<Promise<unknown>> = [];
  for (let n = 0; performance.now() - started < SECONDS * 1000; n++) {
    await new Promise((r) => setTimeout(r, Math.max(0, started + (n * 1000) / RATE - performance.now())));
    const r = rect(n);
    if (!r) continue;
    for (const s of sockets) acks.push(s.timeout(60_000).emitWithAck('viewport', { dataset: SLIDE, spec: SPEC, level: 0, z: n % 2 === 0 ? 0 : 2, t: 0, ...r }).catch(() => 'timeout'));
  }
  const answered = await Promise.all(acks);
  const lat = (await probe.stop()).sort((a, b) => a - b);
  clearInterval(rssTimer);
  const timeouts = answered.filter((a) => a === 'timeout').length;
  return `${name.padEnd(10)} ${String(acks.length).padStart(5)} viewports (${timeouts} unanswered); /healthz p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms (${lat.length} fetches); RSS max ${rssMax.toFixed(0)} MB`;
}

async function main(): Promise<void> {
  const system = await TestSystem.start({ gateways: 1, workers: 1 });
  const sockets: Array<Socket<ServerToClientEvents, ClientToServerEvents>> = [];
  try {
    await system.catalog.publish(
      DatasetManifest.parse({ v: 1, id: SLIDE, version: 1, width: 131_072, height: 131_072, sizeZ: 3, sizeT: 1, tileSize: 256, levels: 10, dtype: 'uint16', channels: [{ label: 'DAPI', color: '#0080ff', window: [0, 4000] }], sourceEncoding: 'raw-deflate-v1', createdAt: new Date().toISOString() }),
      { v: 1, dataset: SLIDE, version: 1, planes: [] },
    );
    const pid = system.processes.find((p) => p.name === 'gateway-0')!.child.pid!;
    for (let i = 0; i < FLOODERS; i++) {
      const s: Socket<ServerToClientEvents, ClientToServerEvents> = io(system.gatewayUrl(0), { transports: ['websocket'], forceNew: true, auth: { protocol: SOCKET_PROTOCOL } });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      sockets.push(s);
    }
    console.log(`viewport bench: a 131072² × 3 z slide (manifest only), ${FLOODERS} sockets × ${RATE} viewports/s, ${SECONDS} s per phase, z 0 and 2 alternating`);
    const rows = [
      await phase(system, sockets, pid, 'idle', () => undefined),
      await phase(system, sockets, pid, 'screens', (n) => {
        const x0 = (n * 37) % 500;
        const y0 = (n * 53) % 500;
        return { x0, y0, x1: x0 + 7, y1: y0 + 4 };
      }),
      await phase(system, sockets, pid, 'full slide', () => ({ x0: 0, y0: 0, x1: 511, y1: 511 })),
    ];
    for (const r of rows) console.log(r);
    console.log('goals (issue 11): full slide /healthz p99 < 50 ms, RSS < 300 MB');
  } finally {
    for (const s of sockets) s.disconnect();
    await system.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
