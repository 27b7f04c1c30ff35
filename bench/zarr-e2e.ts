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
 * The image: 2 channels × 64 z × 1024², uint16, microscopy-like, written by Python's zarr (Blosc lz4
 * + shuffle) in chunks of 256², 1024² and 64³, with 2 levels; registered by the API (POST
 * /v1/datasets, `link`), and the 256² one once more with `copy`.
 * A round, per dataset: the whole level-0 plane (4 × 4 tiles) over 16 consecutive z slices (256
 * tiles, 2-channel JPEG q85). Cold means:
 *  - every round has a new spec (windows no round used), so no tile is in the tile store;
 *  - each dataset's rounds read z ranges no earlier round of it read, ordered 0-15, 32-47, 16-31,
 *    48-63 so that a round never starts in the half of a 32-plane Blosc block an earlier round
 *    decoded (and offered to the worker's read-ahead) two rounds before; between two rounds of one
 *    dataset the other three read ~200 MB of source through the workers' 64 MB caches.
 * What stays warm: the OS page cache, the opened Zarrs' metadata, JIT and sharp (one uncounted
 * round per dataset at level 1 first, which also checks the four give the same bytes).
 * Figures: per layout, median tiles/s over E2E_ZARR_ROUNDS (3, at most 4) rounds, datasets in a
 * rotating order within each round; linked ÷ copied.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RenderSpecInput } from '@tilefarm/contracts';
import { TestSystem } from '../test/support/system';
import { connectedViewer, type RoundTile } from './support/viewer-round';
import { processCpu } from './support/process-cpu';

const SIZE_C = 2;
const SIZE_Z = 64;
const SIDE = 1024;
const Z_PER_ROUND = 16;
/** z starts per dataset, in round order: never the other half of a Blosc block read two rounds before. */
const Z_STARTS = [0, 32, 16, 48];
const ROUNDS = Math.min(Z_STARTS.length, Number(process.env.E2E_ZARR_ROUNDS ?? 3));
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
const WORKER_SETTINGS = Object.fromEntries(['SOURCE_CACHE_MB', 'SOURCE_READAHEAD_MB', 'WORKER_CONCURRENCY', 'RENDER_BATCH_TILES'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
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

    const codec = system.workers[0]!.output.join('').match(/"chunks":"Blosc"[^\n]*/)?.[0];
    console.log(`the workers' Blosc decoder: ${codec ?? 'not reported'}`);
    console.log(`zarr bench, end to end: ${plane(0, 0).length} cold tiles per round (level 0, 4×4 tiles × ${Z_PER_ROUND} z, 2-channel JPEG q85) per dataset, ${WORKERS} workers, one viewer fetching 6 at a time, median of ${ROUNDS} rounds, node ${process.version}`);
    const rates = new Map<string, number[]>(DATASETS.map((id) => [id, []]));
    /** CPU seconds of every process of the system (workers, API, gateway), all threads. */
    const systemCpu = () => system!.processes.reduce((sum, p) => sum + (p.child.pid && p.child.exitCode === null ? processCpu(p.child.pid).total : 0), 0);
    const cpuMs = new Map<string, number[]>(DATASETS.map((id) => [id, []]));
    /** Source reads that missed the workers' caches (a source tile, or a chunk's window of planes, read and decoded). */
    const misses = new Map<string, number[]>(DATASETS.map((id) => [id, []]));
    const spans: { dataset: string; round: number; fromUs: number; toUs: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // A rotating order: no dataset always follows the same one.
      const order = DATASETS.map((_, i) => DATASETS[(i + round) % DATASETS.length]!);
      for (const id of order) {
        const from = process.hrtime.bigint() / 1000n;
        const cpu0 = systemCpu();
        const misses0 = await system.workerCounter('tilefarm_source_cache_misses_total');
        const r = await viewer.run(id, freshSpec(), plane(0, Z_STARTS[round]!));
        cpuMs.get(id)!.push(((systemCpu() - cpu0) * 1000) / r.tiles);
        rates.get(id)!.push(r.tiles / r.seconds);
        // The profiles' clock (V8's, CLOCK_MONOTONIC µs) is this one: each round's span, to cut them.
        spans.push({ dataset: id, round, fromUs: Number(from), toUs: Number(process.hrtime.bigint() / 1000n) });
        misses.get(id)!.push((await system.workerCounter('tilefarm_source_cache_misses_total')) - misses0);
      }
    }
    viewer.close();
    if (PROFILE_DIR) writeFileSync(join(PROFILE_DIR, 'rounds.json'), JSON.stringify(spans));

    const range = (v: number[]) => `${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}`;
    const copied = median(rates.get('copied')!);
    const cpu = (id: string) => `${median(cpuMs.get(id)!).toFixed(2)} ms system CPU per tile, source cache misses per round ${misses.get(id)!.join(', ')}`;
    console.log(`copied source (256² source tiles): ${copied.toFixed(1)} tiles/s end to end (range ${range(rates.get('copied')!)}), ${cpu('copied')}`);
    for (const l of MEASURED) {
      const linked = rates.get(l.name)!;
      const perRound = linked.map((v, i) => v / rates.get('copied')![i]!);
      console.log(`linked Zarr, chunks ${l.label}: ${median(linked).toFixed(1)} tiles/s end to end (range ${range(linked)}), linked/copied ${(median(linked) / copied).toFixed(2)} (per round ${perRound.map((v) => v.toFixed(2)).join(', ')}; goal >= 0.8); ${cpu(l.name)}`);
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
