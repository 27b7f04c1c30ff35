/**
 * npm run bench:push: push delivery against the design it replaces, same data, same load, one run.
 *
 *   tilefarm - the whole system as real processes (API, 1 gateway, 2 workers x 2 renders in flight,
 *              real Redis, local storage); each viewer holds one WebSocket, states its viewport per
 *              slice and asks for the visible tiles it lacks; the gateway prefetches ±PREFETCH_Z.
 *   naive    - bench/naive-server.ts: one Express process rendering each tile inside its request
 *              (same renderer, same source reads); each viewer fetches the visible tiles of each
 *              slice over HTTP, 6 connections at a time like a browser, and drops the requests it has
 *              not sent yet when it moves on (generous: browsers rarely do).
 * What each side has cached when its measured viewers start:
 *   - source tiles: each render process (each tilefarm worker, the naive server) has a decoded
 *     source cache of SOURCE_CACHE_MB (default 64, a worker's default); tilefarm has two such
 *     caches, one per worker, the naive server one. Neither holds a source tile of the measured
 *     dataset: both are warmed by the same warm-up viewer on another dataset of the same shape
 *     (WARM), which fills their caches with that dataset's tiles (JIT, sharp and the caches'
 *     churn warm, nothing of the measured data). The naive server's cache was 256 MB and it was
 *     warmed on the measured dataset (whose decoded source, ~118 MB, fit in it whole), before session 6.
 *   - rendered tiles: none for the measured specs on either side (each side has its own specs).
 *   - the OS page cache holds the source files for both (written by the dataset's creation).
 * Viewers behave like people scrolling Z-stacks: each starts at its own slice, scrolls SLICES slices
 * at DWELL_MS per slice, and stays on the last one until it is complete. Health-check latency is
 * measured by a separate process (a loop of sequential GETs) against the API (tilefarm) and the
 * Express server (naive) while the load runs. It is a report, not a test: nothing here fails.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { SOCKET_PROTOCOL, type ClientToServerEvents, type ServerToClientEvents, type TilesRequestAck } from '@tilefarm/contracts';
import { tileKey } from '@tilefarm/datasets';
import { startLatencyProbe } from '../test/support/latency-probe';
import { TestSystem } from '../test/support/system';

const VIEWERS = Number(process.env.VIEWERS ?? 12);
const SLICES = Number(process.env.SLICES ?? 30);
const DWELL_MS = Number(process.env.DWELL_MS ?? 100);
const SPECS = Number(process.env.SPECS ?? 4);
const PREFETCH_Z = Number(process.env.PREFETCH_Z ?? 2);
const IDLE_SOCKETS = Number(process.env.IDLE_SOCKETS ?? 500);
/** Renders in flight per worker; 2 workers share the 2 cores. */
const WORKER_CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 2);
/** Source cache per render process, both sides (see the header). */
const SOURCE_CACHE_MB = Number(process.env.SOURCE_CACHE_MB ?? 64);
const DATASET = { id: 'deep', width: 768, height: 512, sizeZ: 50, tileSize: 256 as const };
/** The warm-up viewers' dataset: DATASET's shape, other pixels, so nothing of DATASET gets cached. */
const WARM = { ...DATASET, id: 'warm', seed: 7 };
const COLS = 3;
const ROWS = 2;


type Tile = { level: number; z: number; t: number; x: number; y: number };
const sliceTiles = (z: number): Tile[] => Array.from({ length: COLS * ROWS }, (_, i) => ({ level: 0, z, t: 0, x: i % COLS, y: Math.floor(i / COLS) }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** What one viewer saw, in both designs. */
interface ViewerLog {
  firstVisibleMs: number;
  /** Of firstVisibleMs, the render itself: a worker's read + composite + encode + store (its tile:ready's renderMs), or the naive server's read + render inside the request (x-render-ms). */
  firstRenderMs: number;
  visible: number[]; // request → delivery, explicitly requested visible tiles
  prefetch: number[]; // first viewport covering it → delivery, tiles the viewer never asked for
  delivered: number;
  requested: number;
  stale: number; // delivered when the viewer was already more than PREFETCH_Z slices away
  lastSliceMs: number;
}

interface Scenario {
  name: string;
  logs: ViewerLog[];
  wallMs: number;
  renders: number;
  wasted: number;
  health: number[];
  rssBusyKb: number;
  rssBaseKb: number;
}

function plan(i: number) {
  const dir = i % 2 === 0 ? 1 : -1;
  const start = dir === 1 ? (i * 7) % (DATASET.sizeZ - SLICES) : DATASET.sizeZ - 1 - ((i * 7) % (DATASET.sizeZ - SLICES));
  return { spec: i % SPECS, zs: Array.from({ length: SLICES }, (_, s) => start + dir * s) };
}

async function pushViewer(url: string, specId: string, i: number, t0: number, dataset = DATASET.id): Promise<ViewerLog> {
  const { zs } = plan(i);
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { transports: ['websocket'], forceNew: true, auth: { protocol: SOCKET_PROTOCOL } });
  await new Promise((r) => socket.once('connect', () => r(undefined)));
  const keyOf = (t: Tile) => tileKey(dataset, 1, specId, { ...t, format: 'jpeg' });
  const zOfKey = new Map<string, number>();
  for (let z = 0; z < DATASET.sizeZ; z++) for (const t of sliceTiles(z)) zOfKey.set(keyOf(t), z);
  const askedAt = new Map<string, number>();
  const coveredAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  const log: ViewerLog = { firstVisibleMs: NaN, firstRenderMs: NaN, visible: [], prefetch: [], delivered: 0, requested: 0, stale: 0, lastSliceMs: NaN };
  let currentZ = zs[0]!;
  let started = 0;
  const deliver = (key: string, renderMs?: number) => {
    if (deliveredAt.has(key)) return;
    const now = performance.now();
    deliveredAt.set(key, now);
    log.delivered++;
    const z = zOfKey.get(key);
    if (z !== undefined && Math.abs(z - currentZ) > PREFETCH_Z) log.stale++;
    const asked = askedAt.get(key);
    if (asked !== undefined) {
      log.visible.push(now - asked);
      if (Number.isNaN(log.firstVisibleMs)) {
        log.firstVisibleMs = now - started;
        log.firstRenderMs = renderMs ?? NaN;
      }
    } else if (coveredAt.has(key)) log.prefetch.push(now - coveredAt.get(key)!);
  };
  socket.on('tile:ready', (e) => deliver(e.key, e.renderMs));
  await sleep(Math.max(0, t0 + i * 50 - performance.now()));
  started = performance.now();
  for (const z of zs) {
    currentZ = z;
    const now = performance.now();
    for (let dz = -PREFETCH_Z; dz <= PREFETCH_Z; dz++) {
      if (z + dz < 0 || z + dz >= DATASET.sizeZ) continue;
      for (const t of sliceTiles(z + dz)) if (!coveredAt.has(keyOf(t))) coveredAt.set(keyOf(t), now);
    }
    socket.emit('viewport', { dataset, spec: specId, level: 0, z, t: 0, x0: 0, y0: 0, x1: COLS - 1, y1: ROWS - 1 });
    const missing = sliceTiles(z).filter((t) => !deliveredAt.has(keyOf(t)) && !askedAt.has(keyOf(t)));
    for (const t of missing) askedAt.set(keyOf(t), now);
    log.requested += missing.length;
    if (missing.length > 0) {
      void (socket.timeout(60_000).emitWithAck('tiles:request', { dataset, spec: specId, tiles: missing }) as Promise<TilesRequestAck>).then(
        (ack) => ack.ok && ack.ready.forEach((r) => deliver(r.key)),
        () => undefined,
      );
    }
    await sleep(DWELL_MS);
  }
  const last = sliceTiles(zs[zs.length - 1]!).map(keyOf);
  const deadline = performance.now() + 60_000;
  while (!last.every((k) => deliveredAt.has(k)) && performance.now() < deadline) await sleep(10);
  log.lastSliceMs = Math.max(...last.map((k) => deliveredAt.get(k) ?? NaN)) - started;
  socket.disconnect();
  return log;
}

async function naiveViewer(base: string, specId: string, i: number, t0: number, dataset = DATASET.id): Promise<ViewerLog> {
  const { zs } = plan(i);
  const log: ViewerLog = { firstVisibleMs: NaN, firstRenderMs: NaN, visible: [], prefetch: [], delivered: 0, requested: 0, stale: 0, lastSliceMs: NaN };
  const queue: Array<{ tile: Tile; at: number }> = [];
  const done = new Set<string>();
  const id = (t: Tile) => `${t.z}/${t.x}/${t.y}`;
  const asked = new Set<string>();
  let currentZ = zs[0]!;
  let started = 0;
  let active = 0;
  let wake: () => void = () => undefined;
  const pump = () => {
    while (active < 6 && queue.length > 0) {
      const { tile, at } = queue.shift()!;
      active++;
      void fetch(`${base}/tiles/${dataset}/${specId}/${tile.level}/${tile.z}/${tile.t}/${tile.x}/${tile.y}.jpeg`)
        .then(async (res) => {
          await res.arrayBuffer();
          const now = performance.now();
          done.add(id(tile));
          log.delivered++;
          log.visible.push(now - at);
          if (Number.isNaN(log.firstVisibleMs)) {
            log.firstVisibleMs = now - started;
            log.firstRenderMs = Number(res.headers.get('x-render-ms') ?? NaN);
          }
          if (Math.abs(tile.z - currentZ) > PREFETCH_Z) log.stale++;
        })
        .catch(() => undefined)
        .finally(() => {
          active--;
          pump();
          wake();
        });
    }
  };
  await sleep(Math.max(0, t0 + i * 50 - performance.now()));
  started = performance.now();
  for (const z of zs) {
    currentZ = z;
    // The viewer moved on: what it has not sent yet for other slices is dropped.
    for (let q = queue.length - 1; q >= 0; q--) if (queue[q]!.tile.z !== z) asked.delete(id(queue.splice(q, 1)[0]!.tile));
    const now = performance.now();
    for (const t of sliceTiles(z)) {
      if (done.has(id(t)) || asked.has(id(t))) continue;
      asked.add(id(t));
      log.requested++;
      queue.push({ tile: t, at: now });
    }
    pump();
    await sleep(DWELL_MS);
  }
  const last = sliceTiles(zs[zs.length - 1]!);
  const deadline = performance.now() + 120_000;
  while (!last.every((t) => done.has(id(t))) && performance.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 50)));
  log.lastSliceMs = performance.now() - started;
  while (active > 0) await sleep(20); // let in-flight renders finish so the server's counters are final
  return log;
}

async function postSpec(apiUrl: string, variant: number): Promise<string> {
  const spec = {
    channels: [
      { index: 0, color: '#0080ff', window: [100, 2000 + variant] },
      { index: 1, color: '#00ff00', window: [100, 1500] },
      { index: 2, color: '#ff0000', window: [100, 2500] },
    ],
    format: 'jpeg',
  };
  const res = await fetch(`${apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  return ((await res.json()) as { id: string }).id;
}

async function main(): Promise<void> {
  console.log(`bench:push: ${VIEWERS} viewers, each scrolling ${SLICES} slices at ${DWELL_MS} ms/slice over ${SPECS} specs; ${DATASET.width}x${DATASET.height}x${DATASET.sizeZ} uint16 x 3 channels, 256 px JPEG tiles, ±${PREFETCH_Z} prefetch; tilefarm: 1 gateway, 2 workers x ${WORKER_CONCURRENCY} in flight; source cache ${SOURCE_CACHE_MB} MB per render process (each worker, the naive server), both warmed on another dataset`);
  const system = await TestSystem.start({ gateways: 1, workers: 2, datasets: [DATASET, WARM], env: { SOURCE_CACHE_MB: String(SOURCE_CACHE_MB), PREFETCH_Z: String(PREFETCH_Z), WORKER_CONCURRENCY: String(WORKER_CONCURRENCY), ...(process.env.RENDER_BATCH_TILES && { RENDER_BATCH_TILES: process.env.RENDER_BATCH_TILES }), ...(process.env.WORKER_NICE && { WORKER_NICE: process.env.WORKER_NICE }) } });
  let naive: ReturnType<typeof spawn> | undefined;
  try {
    const gateway = system.processes.find((p) => p.name === 'gateway-0')!.child.pid!;
    const warmSpec = await postSpec(system.apiUrl, 999);
    const pushSpecs = await Promise.all(Array.from({ length: SPECS }, (_, s) => postSpec(system.apiUrl, s)));
    const naiveSpecs = await Promise.all(Array.from({ length: SPECS }, (_, s) => postSpec(system.apiUrl, 100 + s)));

    // Warm both designs (JIT, sharp, the source caches' churn) the same way: one viewer on WARM.
    await pushViewer(system.gatewayUrl(0), warmSpec, 0, performance.now(), WARM.id).catch(() => undefined);

    // RSS per idle connection on the gateway.
    await sleep(500);
    const idleBase = rssKb(gateway);
    const idle: Array<Socket> = [];
    for (let i = 0; i < IDLE_SOCKETS; i++) idle.push(io(system.gatewayUrl(0), { transports: ['websocket'], forceNew: true, auth: { protocol: SOCKET_PROTOCOL } }));
    await Promise.all(idle.map((s) => (s.connected ? undefined : new Promise((r) => s.once('connect', () => r(undefined))))));
    await sleep(1000);
    const idleKbPerConn = (rssKb(gateway) - idleBase) / IDLE_SOCKETS;
    for (const s of idle) s.disconnect();
    await sleep(1000);

    // tilefarm.
    const counter = (n: string) => system.workerCounter(n);
    const before = { renders: await counter('tilefarm_renders_total'), wasted: await counter('tilefarm_renders_unwanted_at_finish_total') };
    const cpuBefore = new Map(system.processes.filter((p) => p.child.exitCode === null).map((p) => [p.name, cpuSeconds(p.child.pid!)]));
    const pushBase = rssKb(gateway);
    let pushPeak = pushBase;
    const sampler = setInterval(() => (pushPeak = Math.max(pushPeak, rssKb(gateway))), 100);
    const pushProbe = startLatencyProbe(`${system.apiUrl}/healthz`, { strict: false });
    let t0 = performance.now() + 100;
    const pushLogs = await Promise.all(Array.from({ length: VIEWERS }, (_, i) => pushViewer(system.gatewayUrl(0), pushSpecs[plan(i).spec]!, i, t0)));
    const pushWall = performance.now() - t0;
    const pushHealth = await pushProbe.stop();
    const cpuUse = system.processes.filter((p) => cpuBefore.has(p.name)).map((p) => `${p.name} ${(cpuSeconds(p.child.pid!) - cpuBefore.get(p.name)!).toFixed(1)} s`);
    console.log(`tilefarm CPU during the run (${(pushWall / 1000).toFixed(1)} s): ${cpuUse.join(', ')}`);
    clearInterval(sampler);
    await sleep(500);
    const push: Scenario = {
      name: 'tilefarm',
      logs: pushLogs,
      wallMs: pushWall,
      renders: (await counter('tilefarm_renders_total')) - before.renders,
      wasted: (await counter('tilefarm_renders_unwanted_at_finish_total')) - before.wasted,
      health: pushHealth,
      rssBusyKb: pushPeak,
      rssBaseKb: pushBase,
    };

    // naive, on the same storage and data, while the tilefarm processes sit idle.
    naive = spawn(process.execPath, [resolve(__dirname, 'naive-server.cjs')], { env: { PATH: process.env.PATH ?? '', DATA_DIR: system.env.DATA_DIR!, PORT: '0', SOURCE_CACHE_MB: String(SOURCE_CACHE_MB), ...(process.env.GLIBC_TUNABLES && { GLIBC_TUNABLES: process.env.GLIBC_TUNABLES }) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const naivePort = await new Promise<number>((r) => naive!.stdout!.once('data', (d: Buffer) => r((JSON.parse(d.toString()) as { port: number }).port)));
    const naiveUrl = `http://127.0.0.1:${naivePort}`;
    await naiveViewer(naiveUrl, warmSpec, 0, performance.now(), WARM.id);
    const naiveStats = async () => (await (await fetch(`${naiveUrl}/stats`)).json()) as { renders: number; maxInFlight: number };
    const naiveBefore = await naiveStats();
    const naiveBase = rssKb(naive.pid!);
    let naivePeak = naiveBase;
    const naiveSampler = setInterval(() => (naivePeak = Math.max(naivePeak, rssKb(naive!.pid!))), 100);
    const naiveProbe = startLatencyProbe(`${naiveUrl}/healthz`, { strict: false });
    t0 = performance.now() + 100;
    const naiveLogs = await Promise.all(Array.from({ length: VIEWERS }, (_, i) => naiveViewer(naiveUrl, naiveSpecs[plan(i).spec]!, i, t0)));
    const naiveWall = performance.now() - t0;
    const naiveHealth = await naiveProbe.stop();
    clearInterval(naiveSampler);
    const naiveAfter = await naiveStats();
    const nv: Scenario = {
      name: 'naive',
      logs: naiveLogs,
      wallMs: naiveWall,
      renders: naiveAfter.renders - naiveBefore.renders,
      wasted: naiveLogs.reduce((a, l) => a + l.stale, 0),
      health: naiveHealth,
      rssBusyKb: naivePeak,
      rssBaseKb: naiveBase,
    };

    const row = (label: string, f: (s: Scenario) => string) => `| ${label} | ${f(push)} | ${f(nv)} |`;
    const all = (s: Scenario, pick: (l: ViewerLog) => number[]) => s.logs.flatMap(pick);
    const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : `${Math.round(v)} ms`);
    const sum = (s: Scenario, pick: (l: ViewerLog) => number) => s.logs.reduce((a, l) => a + pick(l), 0);
    const lines = [
      `| ${VIEWERS} viewers scrolling ${SLICES} z at ${DWELL_MS} ms/slice | tilefarm (push) | naive (render in request) |`,
      '|---|---|---|',
      row('tiles delivered', (s) => `${sum(s, (l) => l.delivered)} (${sum(s, (l) => l.requested)} visible asked for)`),
      row('tiles/s delivered', (s) => `${Math.round((sum(s, (l) => l.delivered) / s.wallMs) * 1000)}`),
      row("time to a viewer's first visible tile p50 / p99", (s) => `${ms(pct(s.logs.map((l) => l.firstVisibleMs), 50))} / ${ms(pct(s.logs.map((l) => l.firstVisibleMs), 99))}`),
      row("first visible tile: its render / the rest, p50 over viewers", (s) => {
        const rendered = s.logs.filter((l) => Number.isFinite(l.firstRenderMs));
        return `${ms(pct(rendered.map((l) => l.firstRenderMs), 50))} / ${ms(pct(rendered.map((l) => l.firstVisibleMs - l.firstRenderMs), 50))} (${rendered.length} rendered for it)`;
      }),
      row('request → tile, visible p50 / p95 / p99', (s) => { const v = all(s, (l) => l.visible); return `${ms(pct(v, 50))} / ${ms(pct(v, 95))} / ${ms(pct(v, 99))}`; }),
      row('viewport → tile, prefetch p50 / p95 / p99', (s) => { const v = all(s, (l) => l.prefetch); return v.length === 0 ? 'no prefetch' : `${ms(pct(v, 50))} / ${ms(pct(v, 95))} / ${ms(pct(v, 99))}`; }),
      row("last slice complete after the viewer's first request, p50 / max", (s) => `${ms(pct(s.logs.map((l) => l.lastSliceMs), 50))} / ${ms(Math.max(...s.logs.map((l) => l.lastSliceMs)))}`),
      row('renders ÷ visible tiles asked for', (s) => (s.renders / sum(s, (l) => l.requested)).toFixed(2) + ` (${s.renders} renders)`),
      row('wasted renders', (s) => `${s.wasted} (${((s.wasted / Math.max(1, s.renders)) * 100).toFixed(1)} %)`),
      row(`tiles arriving after the viewer moved > ${PREFETCH_Z} slices away`, (s) => `${sum(s, (l) => l.stale)}`),
      row('health check p50 / p99 / max under load', (s) => `${pct(s.health, 50).toFixed(1)} / ${pct(s.health, 99).toFixed(1)} / ${Math.max(...s.health).toFixed(0)} ms (${s.health.length} GETs)`),
      row('web-tier RSS per busy viewer', (s) => `${Math.round((s.rssBusyKb - s.rssBaseKb) / VIEWERS)} KB (peak ${Math.round(s.rssBusyKb / 1024)} MB)`),
      `| gateway RSS per idle connection | ${idleKbPerConn.toFixed(1)} KB (${IDLE_SOCKETS} sockets) | — |`,
    ];
    console.log('');
    console.log(lines.join('\n'));
    console.log('');
    console.log("first visible tile's render: tilefarm's is the worker's read + composite + encode + store (tile:ready's renderMs), the naive server's its read + render inside the request; the rest is everything else between the viewer's first request and the tile (tilefarm: gateway, queue, pick-up, announce, push; naive: HTTP and waiting for the server).");
    console.log(`wasted: tilefarm counts renders that finished when no viewer wanted the tile (worker metric tilefarm_renders_unwanted_at_finish_total); naive counts responses that arrived after the viewer had moved more than ${PREFETCH_Z} slices away. Naive in-flight peak: ${naiveAfter.maxInFlight} renders.`);
  } finally {
    naive?.kill('SIGTERM');
    await system.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
