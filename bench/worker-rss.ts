/**
 * Part of `npm run bench:render`: the resident memory of one real worker process under sustained load.
 *
 * Starts the built system (api, 1 gateway, 1 worker: the built apps) on a unique Redis prefix with a synthetic
 * 2048x2048x8 uint16 dataset (3 channels: ~256 MB of source tiles over all levels, more than the
 * worker's source cache, so the cache fills and evicts), then keeps IN_FLIGHT
 * HTTP tile requests open for SECONDS, every one a tile not rendered before (each round of
 * positions uses a new spec), and samples /proc/<worker pid>/status (VmRSS) once a second.
 * A report, not a test: it prints peak and final RSS against the 300 MB goal.
 */
import { readFileSync } from 'node:fs';
import { levelGrid } from '@tilefarm/contracts';
import { TestSystem } from '../test/support/system';

const SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 60);
const IN_FLIGHT = 16;
const DATASET = { id: 'rss', width: 2048, height: 2048, sizeZ: 8, tileSize: 256 as const };

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function main(): Promise<void> {
  const started = performance.now();
  // BENCH_SOURCE_CACHE_MB / BENCH_MALLOC_ARENA_MAX set the worker's variables (default: as the worker is shipped).
  const workerEnv: Record<string, string> = {};
  for (const name of ['SOURCE_CACHE_MB', 'MALLOC_ARENA_MAX']) {
    const value = process.env[`BENCH_${name}`];
    if (value) workerEnv[name] = value;
  }
  const system = await TestSystem.start({ workers: 1, gateways: 1, datasets: [DATASET], env: workerEnv });
  try {
    const worker = system.workers[0]!;
    const pid = worker.child.pid!;
    const manifest = await system.catalog.get(DATASET.id);
    console.log(`worker RSS bench: ${DATASET.width}x${DATASET.height}x${DATASET.sizeZ} uint16, 3 channels, ${manifest.levels} levels (dataset made in ${((performance.now() - started) / 1000).toFixed(0)} s); ${IN_FLIGHT} HTTP requests in flight for ${SECONDS} s, every tile distinct; worker settings: ${Object.entries(workerEnv).map(([k, v]) => `${k}=${v}`).join(' ') || 'defaults'}`);
    // Every (level, z, x, y) once per round; a round's tiles share a spec, each round a new one.
    const positions: Array<{ level: number; z: number; x: number; y: number }> = [];
    for (let level = 0; level < manifest.levels; level++) {
      const { cols, rows } = levelGrid(manifest, level);
      for (let z = 0; z < manifest.sizeZ; z++) for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) positions.push({ level, z, x, y });
    }
    const specIds = new Map<number, Promise<string>>();
    const specFor = (round: number): Promise<string> => {
      let id = specIds.get(round);
      if (!id) {
        const hi = 2000 + round * 7;
        const spec = { channels: [{ index: 0, window: [100, hi] }, { index: 1, window: [100, hi + 500] }, { index: 2, window: [100, hi + 900], gamma: 0.8 }], format: 'jpeg' };
        id = fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })
          .then((res) => res.json() as Promise<{ id: string }>)
          .then((body) => body.id);
        specIds.set(round, id);
      }
      return id;
    };

    const baseline = rssMb(pid);
    const samples: number[] = [];
    let next = 0;
    let failed = 0;
    const end = performance.now() + SECONDS * 1000;
    const sampler = setInterval(() => {
      samples.push(rssMb(pid));
      if (samples.length % 10 === 0) console.log(`  ${samples.length} s: RSS ${samples[samples.length - 1]!.toFixed(0)} MB, ${next} tiles requested`);
    }, 1000);
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          const i = next++;
          const p = positions[i % positions.length]!;
          const spec = await specFor(Math.floor(i / positions.length));
          const res = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${spec}/${p.level}/${p.z}/0/${p.x}/${p.y}.jpeg`);
          await res.arrayBuffer();
          if (res.status !== 200) failed++;
        }
      }),
    );
    clearInterval(sampler);
    const rendered = await system.workerCounter('tilefarm_renders_total');
    const cacheMb = (await system.workerCounter('tilefarm_source_cache_bytes')) / 1048576;
    const final = rssMb(pid);
    const peak = Math.max(...samples, final);
    console.log(
      `worker RSS: baseline ${baseline.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, final ${final.toFixed(0)} MB (goal <= 300 MB); ${rendered} tiles rendered (${(rendered / SECONDS).toFixed(0)}/s), ${failed} failed; source cache ${cacheMb.toFixed(0)} MB at the end`,
    );
  } finally {
    await system.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
