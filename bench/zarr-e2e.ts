/**
 * npm run bench:zarr, second part: the same comparison as bench/zarr.ts (linked OME-Zarr ÷ the
 * same image copied into tilefarm's own source tiles, issue 13: goal ≥ 0.8) end to end, as a user
 * gets tiles: the whole system as real processes (API, gateway, 2 workers, Redis), a viewer that
 * asks over its socket and fetches every announced tile (bench/support/viewer-round.ts).
 *
 * bench/zarr.ts measures the worker's read and render alone, in one process: the strictest form,
 * where the read path is the largest share of a tile's cost. Here the same reads sit inside
 * everything else a tile costs (the queue, the store write, the announcement, the GET), as in
 * production.
 *
 * The image: 2 channels × 288 z × 1024², uint16, microscopy-like, written by Python's zarr (Blosc
 * lz4 + shuffle) in chunks of 256², 1024² and 64³, with 2 levels; registered by the API (POST
 * /v1/datasets, `link`), and the 256² one once more with `copy`.
 * A round, per dataset: the whole level-0 plane (4 × 4 tiles) over 16 consecutive z slices (256
 * tiles, 2-channel JPEG q85), asked three ways, each on z slices of its own:
 *  - "z stack": in one request (a viewer prefetching slices, a projection's reads): the tiles of
 *    one chunk are one render job (render-batches.ts);
 *  - "plane by plane": 16 requests of one plane, each asked once the last plane has all arrived
 *    (a user stepping through z, with no prefetch): jobs of neighbouring tiles of one plane, so the
 *    slices of a 64³ chunk go to whichever worker is free;
 *  - "scroll": the same, each plane's viewport reported first as the viewer does, so the gateway
 *    prefetches ±2 slices (PREFETCH_Z) in one request each, and a plane asked for may be there
 *    already (a prefetched tile is fetched once asked for, as the viewer does). The prefetches past
 *    the last slice finish untimed before the next round.
 * Cold means:
 *  - every round has a new spec (windows no round used), so no tile is in the tile store;
 *  - each dataset's rounds read z ranges no other round of it read: each in a 32-slice Blosc block
 *    of its own (the 64³ chunks'), prefetches included, since a block's other half decoded by one
 *    round stays in the workers' read-ahead (session 11's first runs of three ways found one so).
 * What stays warm: the OS page cache, the opened Zarrs' metadata, JIT and sharp (one uncounted
 * round per dataset at level 1 first, which also checks the four give the same bytes), and the
 * workers' arenas of shared chunks, filled with another dataset's (the 64³ Zarr linked again as
 * "warm64"), as in workers that have served before; their caches then hold that dataset's windows.
 * Figures: per way and layout, median tiles/s over E2E_ZARR_ROUNDS rounds (3, the most its z
 * ranges allow; fewer for a quick look), datasets in a rotating order within each round; linked ÷
 * copied; CPU per tile of the whole system (every process of tilefarm, all threads) and of the
 * workers alone; source reads that missed the workers' caches per round, from storage and read back
 * from the machine's shared chunks (another worker's decode, whole or, of a tile's stack, the
 * plane asked for; SHARED_CHUNKS_MB=0: none); buffers
 * the workers' pools allocated fresh per round (memory their arenas had no room for, see
 * docs/benchmarks.md "Session 27"); the workers' minor page faults per tile; the workers' full
 * garbage collections per round and their main threads' time in collections per tile (their own
 * /metrics, docs/benchmarks.md "Session 22").
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RenderSpecInput } from '@tilefarm/contracts';
import { TestSystem } from '../test/support/system';
import { connectedViewer, type RoundTile } from './support/viewer-round';
import { minorFaults, processCpu } from './support/process-cpu';

const SIZE_C = 2;
const SIZE_Z = 288;
const SIDE = 1024;
const Z_PER_ROUND = 16;
/**
 * z starts per dataset, one per way and round: 16 slices in the middle of a 32-slice Blosc block of
 * the 64³ chunks (8-23 of it), a scroll's ±2 prefetch included, so no use reads or decodes a block
 * another use did (a block's other half is offered to the workers' read-ahead, which keeps it).
 */
const Z_STARTS = Array.from({ length: 9 }, (_, i) => 32 * i + 8);
const WAYS = ['z stack', 'plane by plane', 'scroll'] as const;
type Way = (typeof WAYS)[number];
const ROUNDS = Math.min(Math.floor(Z_STARTS.length / WAYS.length), Number(process.env.E2E_ZARR_ROUNDS ?? 3));
const LAYOUTS = [
  { name: 'c256', label: '256² (1×1×256×256)', chunkZ: 1, chunkYX: 256 },
  { name: 'c1024', label: '1024² (1×1×1024×1024)', chunkZ: 1, chunkYX: 1024 },
  { name: 'c64', label: '64³ (1×64×64×64)', chunkZ: 64, chunkYX: 64 },
];
/** The chunkings measured (ZARR_LAYOUTS=c64: some of them, e.g. under a profiler); the copied source always. */
const MEASURED = LAYOUTS.filter((l) => !process.env.ZARR_LAYOUTS || process.env.ZARR_LAYOUTS.split(',').includes(l.name));
const DATASETS = ['copied', ...MEASURED.map((l) => l.name)];
const WORKERS = Number(process.env.WORKERS ?? 2);
/** Worker settings to try, passed through when set (the system's defaults otherwise). */
const WORKER_SETTINGS = Object.fromEntries(['SOURCE_CACHE_MB', 'SOURCE_READAHEAD_MB', 'SHARED_CHUNKS_MB', 'WORKER_CONCURRENCY', 'RENDER_BATCH_TILES'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
/** ZARR_E2E_PROFILE_DIR=dir: the workers run under --cpu-prof, their profiles written there. */
const PROFILE_DIR = process.env.ZARR_E2E_PROFILE_DIR;

let specSerial = Math.floor(Math.random() * 1000);
/** Windows no run has used: new tile keys, nothing from the tile store. */
function freshSpec(): RenderSpecInput {
  const n = specSerial++;
  return { channels: [{ index: 0, window: [100 + n, 3000 + n] }, { index: 1, window: [100 + n, 6000 + n] }], format: 'jpeg', quality: 85 };
}

function plane(level: number, z0: number): RoundTile[] {
  const side = Math.ceil((SIDE >> level) / 256);
  const tiles: RoundTile[] = [];
  for (let z = z0; z < z0 + Z_PER_ROUND; z++) for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) tiles.push({ level, z, t: 0, x, y, format: 'jpeg' });
  return tiles;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-bench-zarr-e2e-'));
  let system: TestSystem | undefined;
  try {
    const t0 = performance.now();
    execFileSync('/usr/bin/python3', [join(__dirname, '../../../bench/support/zarr-bench-image.py'), dir, String(SIZE_C), String(SIZE_Z), String(SIDE), '2', ...LAYOUTS.map((l) => `${l.name}:${l.chunkZ}:${l.chunkYX}`)], { stdio: 'ignore' });
    console.log(`image written by python3-zarr in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${SIZE_C} c × ${SIZE_Z} z × ${SIDE}², uint16, Blosc lz4, 2 levels`);
    system = await TestSystem.start({ workers: WORKERS, env: { INGEST_ROOT: dir, ...WORKER_SETTINGS }, readyTimeoutMs: 60_000, nodeArgs: (name) => (PROFILE_DIR && name.startsWith('worker') ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []) });
    for (const l of MEASURED) await system.registerDataset({ id: l.name, source: `${l.name}.zarr`, mode: 'link' }, { timeoutMs: 120_000 });
    // The 64³ Zarr once more under another id: its chunks are other chunks to the workers (keys name the dataset).
    if (MEASURED.some((l) => l.name === 'c64')) await system.registerDataset({ id: 'warm64', source: 'c64.zarr', mode: 'link' }, { timeoutMs: 120_000 });
    const c0 = performance.now();
    await system.registerDataset({ id: 'copied', source: 'c256.zarr', mode: 'copy' }, { timeoutMs: 300_000 });
    console.log(`copied into source tiles by the API's ingest in ${((performance.now() - c0) / 1000).toFixed(1)} s`);

    const viewer = await connectedViewer(system.gatewayUrl());
    // Uncounted: JIT, sharp and the Zarrs' metadata warm, at level 1 (no level-0 chunk read); and
    // the four must deliver the very same bytes for one spec (a bench of wrong pixels is worthless).
    const warmSpec = freshSpec();
    const warm = new Map<string, Buffer[]>();
    for (const id of DATASETS) warm.set(id, (await viewer.run(id, warmSpec, plane(1, 0))).bodies);
    for (const id of DATASETS) {
      if (!warm.get(id)!.every((b, i) => b.equals(warm.get('copied')![i]!))) throw new Error(`${id} delivered other bytes than the copied source for the same spec and tiles`);
    }

    // Uncounted too: workers that have served before. Each keeps the 64³ windows it shares in an arena
    // of its own (SHARED_CHUNKS_MB), whose first fill writes fresh memory-backed pages (~200 µs per
    // 128 KB window here, against ~20-35 µs once they exist); three z stacks of another dataset fill
    // them (2 × 128 MB), as a worker's arena is full after its first thousand windows or so.
    if (MEASURED.some((l) => l.name === 'c64')) for (const z0 of [0, 96, 192]) await viewer.run('warm64', freshSpec(), plane(0, z0));
    const codec = system.workers[0]!.output.join('').match(/"chunks":"Blosc"[^\n]*/)?.[0];
    console.log(`the workers' Blosc decoder: ${codec ?? 'not reported'}`);
    console.log(`zarr bench, end to end: ${plane(0, 0).length} cold tiles per round and way (level 0, 4×4 tiles × ${Z_PER_ROUND} z, 2-channel JPEG q85) per dataset, ${WORKERS} workers, one viewer fetching 6 at a time, median of ${ROUNDS} rounds, node ${process.version}`);
    /** CPU seconds of every process of the system (workers, API, gateway), all threads. */
    const cpuOf = (processes: TestSystem['processes']) => processes.reduce((sum, p) => sum + (p.child.pid && p.child.exitCode === null ? processCpu(p.child.pid).total : 0), 0);
    const systemCpu = () => cpuOf(system!.processes);
    const workersCpu = () => cpuOf(system!.workers);
    /**
     * The workers' counters a round reports, from one /metrics answer per worker: source reads that
     * missed their caches, entries read back from the shared chunks, fresh pool buffers, and their
     * garbage collections as prom-client counts them (from perf_hooks): full (mark-compact)
     * collections, and the seconds their main threads stood in any collection. What the
     * collector's helper threads spend besides is in the workers' CPU only.
     */
    const counters = async () => {
      const metrics = await system!.workerMetrics();
      const pausedSeconds = ['minor', 'major', 'incremental', 'weakcb'].reduce((sum, kind) => sum + metrics.counter('nodejs_gc_duration_seconds_sum', { kind }), 0);
      return {
        misses: metrics.counter('tilefarm_source_cache_misses_total'),
        shared: metrics.counter('tilefarm_shared_chunk_reads_total', { result: 'hit' }),
        sharedPlanes: metrics.counter('tilefarm_shared_chunk_reads_total', { result: 'plane' }),
        fresh: metrics.counter('tilefarm_source_buffers_total', { result: 'fresh' }),
        majorGcs: metrics.counter('nodejs_gc_duration_seconds_count', { kind: 'major' }),
        pausedSeconds,
      };
    };
    /** Memory the workers touched for the first time (~15 µs a 4 KB page on this VM). */
    const workerFaults = () => system!.workers.reduce((sum, w) => sum + (w.child.pid && w.child.exitCode === null ? minorFaults(w.child.pid) : 0), 0);
    interface Measured {
      rate: number;
      cpuMs: number;
      workerCpuMs: number;
      /** Source reads that missed the workers' caches and went to storage (a source tile; a chunk; of 64³ chunks, a tile's stack of 16 planes: 16 chunks' windows, read and decoded). */
      misses: number;
      /**
       * Entries read back from another worker's decode (the machine's shared chunks: a tile's planes
       * of one channel and window each), put into the cache without a miss.
       */
      shared: number;
      /** Single planes of another worker's stacks read back (a plane of one tile and channel each). */
      sharedPlanes: number;
      /** Buffers the workers' pools allocated fresh, their arenas having no room (source reads, decodes, stacks; any size). */
      fresh: number;
      faultsPerTile: number;
      /** The workers' full collections in the round. */
      majorGcs: number;
      /** Their main threads' time in collections, per tile. */
      gcPauseMs: number;
    }
    const results = new Map<string, Measured[]>();
    const renderingStopped = async () => {
      for (let last = -1, now = await system!.workerCounter('tilefarm_renders_total'); now !== last; last = now, now = await system!.workerCounter('tilefarm_renders_total')) await new Promise((r) => setTimeout(r, 300));
    };
    const spans: { dataset: string; way: Way; round: number; fromUs: number; toUs: number }[] = [];
    let use = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const way of WAYS) {
        const z0 = Z_STARTS[use++]!;
        // A rotating order: no dataset always follows the same one.
        const order = DATASETS.map((_, i) => DATASETS[(i + round) % DATASETS.length]!);
        for (const id of order) {
          const spec = freshSpec();
          const tiles = plane(0, z0);
          // The counters first: the workers' CPU answering /metrics is no round's.
          const before = await counters();
          const from = process.hrtime.bigint() / 1000n;
          const cpu0 = systemCpu();
          const workerCpu0 = workersCpu();
          const faults0 = workerFaults();
          let seconds = 0;
          if (way === 'z stack') seconds = (await viewer.run(id, spec, tiles)).seconds;
          else {
            for (let z = z0; z < z0 + Z_PER_ROUND; z++) {
              // A scroll says where it looks first, as the viewer does: the gateway prefetches ±PREFETCH_Z slices.
              if (way === 'scroll') viewer.viewport({ dataset: id, spec, level: 0, z, t: 0, x0: 0, y0: 0, x1: 3, y1: 3, format: 'jpeg' });
              seconds += (await viewer.run(id, spec, tiles.filter((t) => t.z === z))).seconds;
            }
          }
          const cpuMs = ((systemCpu() - cpu0) * 1000) / tiles.length;
          const workerCpuMs = ((workersCpu() - workerCpu0) * 1000) / tiles.length;
          // The profiles' clock (V8's, CLOCK_MONOTONIC µs) is this one: each round's span, to cut them.
          spans.push({ dataset: id, way, round, fromUs: Number(from), toUs: Number(process.hrtime.bigint() / 1000n) });
          // A scroll's last prefetches (2 slices past it) finish before the next round, untimed.
          if (way === 'scroll') await renderingStopped();
          const key = `${way}/${id}`;
          const after = await counters();
          results.set(key, [...(results.get(key) ?? []), {
            rate: tiles.length / seconds,
            cpuMs,
            workerCpuMs,
            misses: after.misses - before.misses,
            shared: after.shared - before.shared,
            sharedPlanes: after.sharedPlanes - before.sharedPlanes,
            fresh: after.fresh - before.fresh,
            faultsPerTile: (workerFaults() - faults0) / tiles.length,
            majorGcs: after.majorGcs - before.majorGcs,
            gcPauseMs: ((after.pausedSeconds - before.pausedSeconds) * 1000) / tiles.length,
          }]);
        }
      }
    }
    viewer.close();
    if (PROFILE_DIR) writeFileSync(join(PROFILE_DIR, 'rounds.json'), JSON.stringify(spans));

    const range = (v: number[]) => `${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}`;
    for (const way of WAYS) {
      const of = (id: string) => results.get(`${way}/${id}`)!;
      const rates = (id: string) => of(id).map((m) => m.rate);
      const detail = (id: string) => `${median(of(id).map((m) => m.cpuMs)).toFixed(2)} ms system CPU per tile (workers ${median(of(id).map((m) => m.workerCpuMs)).toFixed(2)}), source reads from storage per round ${of(id).map((m) => m.misses).join(', ')} (and entries read back from the machine's shared chunks, a tile's planes of one channel each, ${of(id).map((m) => m.shared).join(', ')}, and single planes of them ${of(id).map((m) => m.sharedPlanes).join(', ')}), fresh buffers from the workers' pools per round ${of(id).map((m) => m.fresh).join(', ')}, workers' minor page faults per tile ${median(of(id).map((m) => m.faultsPerTile)).toFixed(0)}, workers' full collections per round ${of(id).map((m) => m.majorGcs).join(', ')} (main threads in collections ${median(of(id).map((m) => m.gcPauseMs)).toFixed(2)} ms per tile)`;
      const copied = median(rates('copied'));
      console.log(`${way}: copied source (256² source tiles): ${copied.toFixed(1)} tiles/s end to end (range ${range(rates('copied'))}); ${detail('copied')}`);
      for (const l of MEASURED) {
        const linked = rates(l.name);
        const perRound = linked.map((v, i) => v / rates('copied')[i]!);
        console.log(`${way}: linked Zarr, chunks ${l.label}: ${median(linked).toFixed(1)} tiles/s end to end (range ${range(linked)}), linked/copied ${(median(linked) / copied).toFixed(2)} (per round ${perRound.map((v) => v.toFixed(2)).join(', ')}; goal >= 0.8); ${detail(l.name)}`);
      }
    }
  } finally {
    await system?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
