/**
 * bench:e2e — cold tiles end to end against the bare encoder on the same pixels (issue 15).
 *
 * Data that looks like microscopy: the synthetic generator's fluorescence stack (16-bit, camera
 * offset and shot noise), 3 channels, 2048² × 16 z = 384 MB of source, six times the worker's
 * default 64 MB source cache. A viewer asks over its socket for level-0 tiles nobody has rendered
 * and fetches each one from its URL as it is announced (6 at a time, like a browser); the clock
 * stops at the last byte. Every round has new channel windows (new spec, new tile keys) and a
 * z range whose sources were last read at least two rounds earlier (evicted by then: cold reads).
 * Before the measured rounds, one full uncounted round of each kind fills the workers' source
 * caches and maps their memory, as in a service that has been running (see main()).
 *
 * Baseline in the same run, right after each e2e round: the delivered JPEGs decoded back to RGB
 * (untimed) and encoded again by the worker's own encoder (SharpTileEncoder, same quality and
 * options, sharp configured as in the worker) with as many in flight as the system had
 * (workers × concurrency). e2e ÷ encoder is the share of the machine's encode rate that reaches
 * the viewer. Rounds alternate multi-channel and grey, and which goes first.
 *
 * Per tile it also prints CPU per process and thread (/proc), Redis commands and bytes (INFO of a
 * Redis of its own), socket bytes, storage reads; and, in a last round with --cpu-prof on the
 * workers, the gateway and the API, their main-thread CPU split into stages. Knobs: E2E_ROUNDS (3),
 * E2E_PROFILE_DIR (keep the profiles there),
 * WORKERS (2), WORKER_CONCURRENCY (2), RENDER_BATCH_TILES (the system's default; 1 = a job per tile), PIXEL_KERNELS (javascript: the composite without the C kernels),
 * E2E_PROFILE=0 to skip the profiled round, E2E_NODE_ARGS (e.g. '--max-semi-space-size=64'), E2E_CLIENT=fetch for the viewer's fetch() of sessions 1-6.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureSharp, SharpTileEncoder } from '@tilefarm/render/encoder';
import { decodeImage } from './support/sharp-images';
import { TestSystem } from '../test/support/system';
import { PrivateRedis } from '../test/support/private-redis';
import type { RenderSpecInput } from '@tilefarm/contracts';
import { connectedViewer, type RoundTile } from './support/viewer-round';
import { processCpu, threadCpuByName, type ProcessCpu } from './support/process-cpu';
import { diffRedis, redisSnapshot, type RedisDelta } from './support/redis-stats';
import { API_STAGES, GATEWAY_STAGES, WORKER_STAGES, stageTimes, type StageRule } from './support/cpu-profile';

const ROUNDS = Number(process.env.E2E_ROUNDS ?? 3);
const WORKERS = Number(process.env.WORKERS ?? 2);
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 2);
const PROFILE = process.env.E2E_PROFILE !== '0';
const IN_FLIGHT = WORKERS * CONCURRENCY;
const DATASET = { id: 'cells', width: 2048, height: 2048, sizeZ: 16, tileSize: 256 as const };
const Z_PER_ROUND = 4;
const QUALITY = 85;
/** E2E_NODE_ARGS: more node flags for every process of the system (V8 or libuv settings to try). */
const EXTRA_NODE_ARGS = (process.env.E2E_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

type Kind = 'multi' | 'grey';
type Tile = RoundTile;

let windowSerial = Math.floor(Math.random() * 500);
/** A spec never used before in this system: new windows, so new keys and nothing from the tile store. */
function freshSpec(kind: Kind): RenderSpecInput {
  const w = windowSerial++;
  if (kind === 'grey') return { channels: [{ index: 0, color: '#ffffff', window: [90 + w, 2400 + 3 * w] }], format: 'jpeg' as const, quality: QUALITY };
  return {
    channels: [
      { index: 0, color: '#0080ff', window: [90 + w, 2600 + 3 * w] },
      { index: 1, color: '#00ff00', window: [95 + w, 1800 + 3 * w] },
      { index: 2, color: '#ff0000', window: [100 + w, 2200 + 3 * w] },
    ],
    format: 'jpeg' as const,
    quality: QUALITY,
  };
}

function tilesOfZ(z0: number, count: number, level = 0): Tile[] {
  const size = DATASET.tileSize << level;
  const cols = Math.ceil(DATASET.width / size);
  const rows = Math.ceil(DATASET.height / size);
  const out: Tile[] = [];
  for (let z = z0; z < z0 + count; z++) for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) out.push({ level, z, t: 0, x, y, format: 'jpeg' });
  return out;
}

/** The 4 z ranges cycle multi, grey, multi, grey...: a range comes back after ≥ 3 other rounds' reads. */
function zRangeFor(slot: number): number {
  return (slot % (DATASET.sizeZ / Z_PER_ROUND)) * Z_PER_ROUND;
}

interface Snapshot {
  cpu: Map<string, ProcessCpu>;
  redis: Awaited<ReturnType<typeof redisSnapshot>>;
  worker: { reads: number; misses: number; renders: number };
  at: number;
}

async function workerCounters(system: TestSystem): Promise<{ reads: number; misses: number; renders: number }> {
  const hits = await system.workerCounter('tilefarm_source_cache_hits_total');
  const misses = await system.workerCounter('tilefarm_source_cache_misses_total');
  const renders = await system.workerCounter('tilefarm_renders_total');
  return { reads: hits + misses, misses, renders };
}

function liveProcesses(system: TestSystem) {
  return system.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null && p.child.pid !== undefined);
}

/** Workers log their metrics port once ready. */
async function workersReady(system: TestSystem): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!system.workers.every((w) => /"metricsPort":\d+/.test(w.output.join('')))) {
    if (Date.now() > deadline) throw new Error('workers not ready after 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function snapshot(system: TestSystem, redis: PrivateRedis): Promise<Snapshot> {
  const cpu = new Map<string, ProcessCpu>();
  for (const p of liveProcesses(system)) cpu.set(p.name, processCpu(p.child.pid!));
  cpu.set('viewer (this process)', { total: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6, main: NaN });
  return { cpu, redis: await redisSnapshot(redis.url), worker: await workerCounters(system), at: performance.now() };
}

interface RoundResult {
  kind: Kind;
  tiles: number;
  seconds: number;
  bodies: Buffer[];
  socketIn: number;
  socketOut: number;
  cpu: Map<string, { total: number; main: number }>;
  redis: RedisDelta;
  worker: { reads: number; misses: number; renders: number };
}

/** One viewer's round (bench/support/viewer-round.ts), with every process's counters read around it. */
async function endToEndRound(system: TestSystem, redis: PrivateRedis, kind: Kind, tiles: Tile[]): Promise<RoundResult> {
  const viewer = await connectedViewer(system.gatewayUrl());
  const spec = freshSpec(kind);
  const before = await snapshot(system, redis);
  const delivered = await viewer.run(DATASET.id, spec, tiles);
  const after = await snapshot(system, redis);
  viewer.close();
  const cpu = new Map<string, { total: number; main: number }>();
  for (const [name, b] of after.cpu) {
    const a = before.cpu.get(name);
    if (a) cpu.set(name, { total: b.total - a.total, main: b.main - a.main });
  }
  const worker = { reads: after.worker.reads - before.worker.reads, misses: after.worker.misses - before.worker.misses, renders: after.worker.renders - before.worker.renders };
  return { kind, ...delivered, cpu, redis: diffRedis(before.redis, after.redis), worker };
}

interface EncodeResult {
  tilesPerSecond: number;
  cpuMsPerTile: number;
}

/** The worker's encoder on the delivered pixels, IN_FLIGHT at a time. */
async function bareEncode(bodies: Buffer[]): Promise<EncodeResult> {
  const pixels = await Promise.all(bodies.map((b) => decodeImage(b)));
  const encoder = new SharpTileEncoder();
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < pixels.length) {
        const p = pixels[next++]!;
        await encoder.encode(p.rgb, p.width, p.height, 'jpeg', QUALITY);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { tilesPerSecond: pixels.length / seconds, cpuMsPerTile: (cpu.user + cpu.system) / 1000 / pixels.length };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');

interface Pair {
  e2e: RoundResult;
  enc: EncodeResult;
}

function group(name: string): string {
  if (name.startsWith('worker')) return 'workers';
  if (name.startsWith('gateway')) return 'gateway';
  return name;
}

/** CPU ms per tile by process group; workers and gateway split into main thread and other threads. */
function cpuRows(pairs: Pair[]): Map<string, number> {
  const tiles = pairs.reduce((s, p) => s + p.e2e.tiles, 0);
  const out = new Map<string, number>();
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + (v * 1000) / tiles);
  for (const { e2e } of pairs) {
    for (const [name, c] of e2e.cpu) {
      const g = group(name);
      if (g === 'workers' || g === 'gateway') {
        add(`${g}: main JS thread`, c.main);
        add(`${g}: other threads (libuv pool: encode, file I/O; V8 GC helpers)`, c.total - c.main);
      } else add(g, c.total);
    }
    add('redis-server', e2e.redis.cpuSeconds);
  }
  return out;
}

interface StageSplit {
  /** Share of the main thread's sampled busy time per stage. */
  shares: Map<string, number>;
  /** Main-thread CPU ms per tile in the same round, from /proc (the profiler samples wall time, which other load inflates). */
  mainCpuMs: number;
}

async function profiledRound(system: TestSystem, redis: PrivateRedis, profileDir: string, slot: number): Promise<{ worker: StageSplit; gateway: StageSplit; api: StageSplit; tiles: number }> {
  // Swap the workers, the gateway and the API for profiled ones (same ports, same Redis prefix).
  await Promise.all([...system.workers, ...system.processes.filter((p) => p.name.startsWith('gateway') || p.name === 'api')].map((p) => p.stop('SIGTERM')));
  system.workers.length = 0;
  for (let i = 0; i < WORKERS; i++) system.addWorker();
  system.spawnApp('gateway-profiled', 'apps/gateway/dist/main.js', { GATEWAY_PORT: String(system.gatewayPorts[0]), HOST: '127.0.0.1' });
  system.spawnApp('api-profiled', 'apps/api/dist/main.js', { PORT: String(system.apiPort), HOST: '127.0.0.1', GATEWAY_PUBLIC_URL: system.gatewayUrl(0) });
  await system.waitFor(`${system.gatewayUrl(0)}/healthz`, 120_000);
  await system.waitFor(`${system.apiUrl}/readyz`, 120_000);
  await workersReady(system);
  // Warm the new processes as main() does: a few level-1 tiles, then a full round of another z range.
  await endToEndRound(system, redis, 'multi', tilesOfZ(zRangeFor(slot), 1, 1));
  await endToEndRound(system, redis, 'multi', tilesOfZ(zRangeFor(slot + 1), Z_PER_ROUND));
  const t0 = process.hrtime.bigint();
  const round = await endToEndRound(system, redis, 'multi', tilesOfZ(zRangeFor(slot), Z_PER_ROUND));
  const t1 = process.hrtime.bigint();
  // The measured round's window in the profiles' clock (µs), for reading them with other tools.
  mkdirSync(profileDir, { recursive: true });
  writeFileSync(join(profileDir, 'window.json'), JSON.stringify({ fromUs: Number(t0 / 1000n), toUs: Number(t1 / 1000n), tiles: round.tiles }));
  await Promise.all(liveProcesses(system).filter((p) => p.name.startsWith('worker') || p.name.startsWith('gateway') || p.name.startsWith('api')).map((p) => p.stop('SIGTERM')));
  const split = (dirName: string, rules: StageRule[]): StageSplit => {
    const ms = new Map<string, number>();
    const dir = join(profileDir, dirName);
    for (const file of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
      const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      for (const [k, v] of stageTimes(profile, rules, undefined, { fromUs: Number(t0 / 1000n), toUs: Number(t1 / 1000n) })) ms.set(k, (ms.get(k) ?? 0) + v);
    }
    const total = [...ms.values()].reduce((a, b) => a + b, 0);
    const mainCpuMs = ([...round.cpu].filter(([name]) => name.startsWith(dirName)).reduce((a, [, c]) => a + c.main, 0) * 1000) / round.tiles;
    return { shares: new Map([...ms].map(([k, v]) => [k, v / total])), mainCpuMs };
  };
  return { worker: split('worker', WORKER_STAGES), gateway: split('gateway', GATEWAY_STAGES), api: split('api', API_STAGES), tiles: round.tiles };
}

async function main(): Promise<void> {
  configureSharp({ cache: false, concurrency: 1 }); // as the worker does
  const redis = await PrivateRedis.start();
  // E2E_PROFILE_DIR keeps the .cpuprofile files (open them in Chrome DevTools); by default they go.
  const keepProfiles = process.env.E2E_PROFILE_DIR;
  const profileDir = keepProfiles ?? mkdtempSync(join(tmpdir(), 'tilefarm-e2e-prof-'));
  let profiling = false;
  const system = await TestSystem.start({
    workers: WORKERS,
    redisUrl: redis.url,
    datasets: [DATASET],
    env: { LOG_LEVEL: 'info', WORKER_CONCURRENCY: String(CONCURRENCY), ...(process.env.RENDER_BATCH_TILES && { RENDER_BATCH_TILES: process.env.RENDER_BATCH_TILES }), ...(process.env.WORKER_NICE && { WORKER_NICE: process.env.WORKER_NICE }), ...(process.env.PIXEL_KERNELS && { PIXEL_KERNELS: process.env.PIXEL_KERNELS }) },
    readyTimeoutMs: 120_000,
    nodeArgs: (name) => [...EXTRA_NODE_ARGS, ...(profiling ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name.startsWith('worker') ? 'worker' : name.startsWith('api') ? 'api' : 'gateway')] : [])],
  });
  try {
    console.log(
      `bench:e2e — ${DATASET.width}²×${DATASET.sizeZ} z × 3 uint16 channels with camera noise (${((DATASET.width * DATASET.height * DATASET.sizeZ * 3 * 2) / 2 ** 20).toFixed(0)} MB of source; worker source cache 64 MB), ` +
        `${WORKERS} workers × ${CONCURRENCY} in flight, ${cpus().length} cores, node ${process.version}; ${ROUNDS} rounds of ${64 * Z_PER_ROUND} cold level-0 256² JPEG q${QUALITY} tiles per row`,
    );
    await workersReady(system);
    // Warm-up: connections, JIT, LUT code paths (level 1: its sources are not the rounds').
    await endToEndRound(system, redis, 'multi', tilesOfZ(0, 2, 1));
    await endToEndRound(system, redis, 'grey', tilesOfZ(2, 2, 1));
    const pairs: Record<Kind, Pair[]> = { multi: [], grey: [] };
    let slot = 0;
    // Then one full round of each kind, not counted: the measured rounds meet workers as a running
    // service has them, their source cache full and its memory already mapped. A freshly started
    // worker pays for every page of that memory once (~15 µs per 4 KB page on this VM,
    // docs/capacity.md), which a 256-tile round spends most of its time on. Still cold: new specs,
    // and z ranges whose sources other rounds have evicted since (zRangeFor).
    for (const kind of ['multi', 'grey'] as const) await endToEndRound(system, redis, kind, tilesOfZ(zRangeFor(slot++), Z_PER_ROUND));
    for (let r = 0; r < ROUNDS; r++) {
      const order: Kind[] = r % 2 === 0 ? ['multi', 'grey'] : ['grey', 'multi'];
      for (const kind of order) {
        const e2e = await endToEndRound(system, redis, kind, tilesOfZ(zRangeFor(slot++), Z_PER_ROUND));
        const enc = await bareEncode(e2e.bodies);
        pairs[kind].push({ e2e, enc });
        console.log(`  round ${r + 1} ${kind}: e2e ${f(e2e.tiles / e2e.seconds)} tiles/s, bare encode ${f(enc.tilesPerSecond)} tiles/s, ratio ${f(e2e.tiles / e2e.seconds / enc.tilesPerSecond, 2)} (source reads ${e2e.worker.reads}, from storage ${e2e.worker.misses})`);
      }
    }

    const rate = (p: Pair) => p.e2e.tiles / p.e2e.seconds;
    const ratio = (p: Pair) => rate(p) / p.enc.tilesPerSecond;
    const list = (v: number[], d = 0) => v.map((x) => f(x, d)).join(', ');
    console.log('\n| row | per round | median |\n|---|---|---|');
    for (const [kind, label] of [['multi', '3 channels, coloured'], ['grey', '1 channel, grey']] as const) {
      const ps = pairs[kind];
      console.log(`| ${label}: end to end, tiles/s | ${list(ps.map(rate))} | ${f(median(ps.map(rate)))} |`);
      console.log(`| ${label}: bare encode of the delivered pixels, ${IN_FLIGHT} in flight, tiles/s | ${list(ps.map((p) => p.enc.tilesPerSecond))} | ${f(median(ps.map((p) => p.enc.tilesPerSecond)))} |`);
      console.log(`| **${label}: end to end ÷ bare encode** (goal ≥ ${kind === 'multi' ? '0.6' : '0.8'}) | ${list(ps.map(ratio), 2)} | **${f(median(ps.map(ratio)), 2)}** |`);
    }

    console.log('\nPer tile (all rounds of a row together; CPU from /proc and Redis INFO, so measured, not estimated):\n');
    console.log('| per tile | 3 channels | 1 channel grey |\n|---|---|---|');
    const cm = cpuRows(pairs.multi);
    const cg = cpuRows(pairs.grey);
    const names = [...new Set([...cm.keys(), ...cg.keys()])];
    let totM = 0;
    let totG = 0;
    for (const n of names) {
      if (n === 'viewer (this process)') continue;
      totM += cm.get(n) ?? 0;
      totG += cg.get(n) ?? 0;
      console.log(`| CPU ms, ${n} | ${f(cm.get(n) ?? NaN, 2)} | ${f(cg.get(n) ?? NaN, 2)} |`);
    }
    console.log(`| **CPU ms, system total** (without the viewer) | **${f(totM, 2)}** | **${f(totG, 2)}** |`);
    const encCpu = (ps: Pair[]) => median(ps.map((p) => p.enc.cpuMsPerTile));
    console.log(`| CPU ms, bare encode of the same pixels (all threads) | ${f(encCpu(pairs.multi), 2)} | ${f(encCpu(pairs.grey), 2)} |`);
    console.log(`| CPU ms, the viewer (socket client + fetching tiles; this process) | ${f(cm.get('viewer (this process)') ?? NaN, 2)} | ${f(cg.get('viewer (this process)') ?? NaN, 2)} |`);
    const per = (ps: Pair[], fn: (p: Pair) => number) => ps.reduce((s, p) => s + fn(p), 0) / ps.reduce((s, p) => s + p.e2e.tiles, 0);
    for (const [label, fn, d] of [
      ['source tiles read', (p: Pair) => p.e2e.worker.reads, 2],
      ['source tiles read from storage (source cache misses)', (p: Pair) => p.e2e.worker.misses, 2],
      ['renders', (p: Pair) => p.e2e.worker.renders, 2],
      ['tile bytes (JPEG)', (p: Pair) => p.e2e.bodies.reduce((s, b) => s + b.length, 0), 0],
      ['socket bytes to the viewer', (p: Pair) => p.e2e.socketIn, 0],
      ['socket bytes from the viewer', (p: Pair) => p.e2e.socketOut, 0],
      ['Redis commands', (p: Pair) => p.e2e.redis.totalCalls, 1],
      ['Redis bytes in (to the server)', (p: Pair) => p.e2e.redis.inputBytes, 0],
      ['Redis bytes out (from the server)', (p: Pair) => p.e2e.redis.outputBytes, 0],
    ] as const) {
      console.log(`| ${label} | ${f(per(pairs.multi, fn), d)} | ${f(per(pairs.grey, fn), d)} |`);
    }
    // What the CPU figures allow, as bench:zarr's ceiling does for reads. The viewer runs on the
    // same cores as the system (as in the issue's measurement), so its CPU per tile is spent
    // from the same budget; the bare encode baseline has no viewer.
    console.log(`\nWhat ${cpus().length} cores allow (rates = cores × 1000 ÷ CPU ms per tile; the bare encode rate is the measured one):\n`);
    console.log('| | 3 channels | 1 channel grey |\n|---|---|---|');
    const cores = cpus().length;
    const bound = (ps: Pair[], cpu: Map<string, number>, system: number) => {
      const viewer = cpu.get('viewer (this process)') ?? 0;
      const enc = median(ps.map((p) => p.enc.tilesPerSecond));
      return {
        measured: median(ps.map(rate)),
        cpuBound: (cores * 1000) / (system + viewer),
        // Every process but the encoder free: the encode and the viewer's own work remain.
        ceiling: (cores * 1000) / (encCpu(ps) + viewer) / enc,
      };
    };
    const bm = bound(pairs.multi, cm, totM);
    const bg = bound(pairs.grey, cg, totG);
    console.log(`| end to end, measured (median), tiles/s | ${f(bm.measured)} | ${f(bg.measured)} |`);
    console.log(`| end to end if CPU were the only limit: system + viewer CPU per tile, tiles/s | ${f(bm.cpuBound)} | ${f(bg.cpuBound)} |`);
    console.log(`| **ceiling of e2e ÷ bare encode**: if the system cost nothing but the encode (viewer still on the same cores) | **${f(bm.ceiling, 2)}** | **${f(bg.ceiling, 2)}** |`);
    const cmds = new Map<string, number>();
    for (const p of pairs.multi) for (const [k, v] of p.e2e.redis.calls) cmds.set(k, (cmds.get(k) ?? 0) + v);
    const tilesM = pairs.multi.reduce((s, p) => s + p.e2e.tiles, 0);
    console.log(`\nRedis commands per tile (3 channels): ${[...cmds].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / tilesM).toFixed(2)}`).join(', ')}`);
    const threads = [...threadCpuByName(system.workers[0]!.child.pid!)].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)} s`);
    console.log(`worker-0 CPU by thread since start: ${threads.join(', ')}`);

    if (PROFILE) {
      profiling = true;
      const prof = await profiledRound(system, redis, profileDir, slot++);
      console.log(
        `\nMain-thread CPU by stage per tile: --cpu-prof on ${WORKERS} workers, the gateway and the API during one more cold 3-channel round of ${prof.tiles} tiles; ` +
          `each stage's share of the sampled time × the main thread's CPU in that round (/proc). Other threads (libuv pool: the encode itself, file I/O) are not sampled.\n`,
      );
      console.log('| stage | share | CPU ms per tile |\n|---|---|---|');
      for (const [who, m] of [['worker', prof.worker], ['gateway', prof.gateway], ['api', prof.api]] as const) {
        for (const [stage, share] of [...m.shares].sort((a, b) => b[1] - a[1])) console.log(`| ${who}: ${stage} | ${f(share * 100, 1)} % | ${f(share * m.mainCpuMs, 3)} |`);
        console.log(`| **${who}: main thread** | 100 % | **${f(m.mainCpuMs, 2)}** |`);
      }
    }
  } finally {
    await system.stop();
    await redis.kill();
    if (!keepProfiles) rmSync(profileDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
