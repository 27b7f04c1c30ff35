/**
 * npm run bench:zarr: cold tiles/s of a linked OME-Zarr ÷ the same image copied into tilefarm's own
 * source tiles, in one run, for Zarr chunks of 256², 1024² and 64³ (issue 13: goal ≥ 0.8).
 *
 * The image: 2 channels × 64 z × 1024², uint16, microscopy-like (offset, noise, blobs), written by
 * Python's zarr (bench/support/zarr-bench-image.py, Blosc lz4 + shuffle) once per chunking; the
 * copied source is the same image registered with mode "copy" (linkZarr, as the API's job does).
 *
 * Each run is what a worker does for one viewer scrolling through z: a 3 × 3-tile viewport at level 0
 * over 16 consecutive z slices (144 tiles, 2-channel composites, JPEG), 4 renders in flight (the
 * worker's concurrency on 2 cores), through the worker's own read path (DatasetPixels + the
 * byte-bounded source cache, SOURCE_CACHE_MB default 64, and its pool of source-tile memory: the
 * cache gives a tile's memory back when it drops it, each render holds a ticket while it reads) and
 * the real renderer (sharp). The pool lives across runs as in a worker; the cache is emptied (its
 * memory given back) at each run's end.
 * Cold means:
 *  - every run has a new spec (a window no run used before) and starts at a new z slice, so no
 *    rendered tile exists (there is no tile cache in this path at all);
 *  - every run starts with an EMPTY source cache (decoded chunks / source tiles), so all reads
 *    within the run come from the store; within a run, a decoded chunk serves every tile and z it
 *    covers while it stays in the cache — that re-use is the point of chunk caching and is counted;
 * What stays warm: the OS page cache (files just written, local disk), the opened Zarr's metadata
 * (a worker keeps it 10 s), sharp/JIT (a warm-up run is not counted).
 * Figures: median of BENCH_ROUNDS (3) interleaved rounds. It is a report, not a test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RenderSpec, type DatasetManifest, type SourceTile } from '@tilefarm/contracts';
import { DatasetCatalog, SourceBufferPool, readSourceTile } from '@tilefarm/datasets';
import { LruByteCache } from '@tilefarm/render';
import { configureSharp, createSharpTileRenderer } from '@tilefarm/render/encoder';
import { LocalObjectStore } from '@tilefarm/storage';
import { DatasetPixels, linkZarr, reportZarrCodecsTo, takeChunkMemoryFrom, zarrPlaceResolver, zarritaLibrary, type DecodedChunk } from '@tilefarm/zarr';

const SIZE_C = 2;
const SIZE_Z = 64;
const SIDE = 1024;
const VIEW = { x0: 1, y0: 1, cols: 3, rows: 3 };
const Z_PER_RUN = 16;
const IN_FLIGHT = 4;
const SOURCE_CACHE_MB = Number(process.env.SOURCE_CACHE_MB ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LAYOUTS = [
  { name: 'c256', label: '256² (1×1×256×256)', chunkZ: 1, chunkYX: 256 },
  { name: 'c1024', label: '1024² (1×1×1024×1024)', chunkZ: 1, chunkYX: 1024 },
  { name: 'c64', label: '64³ (1×64×64×64)', chunkZ: 64, chunkYX: 64 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-bench-zarr-'));
  try {
    configureSharp({ cache: false, concurrency: 1 });
    // Which Blosc decoder the linked runs use: part of the figures.
    reportZarrCodecsTo({ info: (fields, message) => console.log(`${message}: ${JSON.stringify(fields)}`), warn: (fields, message) => console.log(`WARNING ${message}: ${JSON.stringify(fields)}`), error: (fields, message) => console.log(`ERROR ${message}: ${JSON.stringify(fields)}`) });
    const t0 = performance.now();
    execFileSync('/usr/bin/python3', [join(__dirname, '../../../bench/support/zarr-bench-image.py'), dir, String(SIZE_C), String(SIZE_Z), String(SIDE), '1', ...LAYOUTS.map((l) => `${l.name}:${l.chunkZ}:${l.chunkYX}`)], { stdio: 'ignore' });
    console.log(`image written by python3-zarr in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${SIZE_C} c × ${SIZE_Z} z × ${SIDE}², uint16, Blosc lz4`);

    const store = new LocalObjectStore(join(dir, 'store'));
    const catalog = new DatasetCatalog(store);
    const places = zarrPlaceResolver({ ingestRoot: dir, s3: { region: 'us-east-1' } });
    const manifests: Record<string, DatasetManifest> = {};
    for (const l of LAYOUTS) {
      const url = `${l.name}.zarr`;
      manifests[l.name] = await linkZarr({ url, place: places(url), library: zarritaLibrary, id: l.name, catalog, maxPixels: 2 ** 40 });
    }
    const c0 = performance.now();
    manifests.copied = await linkZarr({ url: 'c256.zarr', place: places('c256.zarr'), library: zarritaLibrary, id: 'copied', catalog, maxPixels: 2 ** 40, copy: true });
    console.log(`copied into source tiles (${manifests.copied.sourceEncoding}) in ${((performance.now() - c0) / 1000).toFixed(1)} s`);

    const pixels = new DatasetPixels(store, places, 2 ** 40);
    // As apps/worker/src/main.ts builds them.
    const sourceBuffers = new SourceBufferPool({ maxFreeBytes: 4 * 1024 * 1024 });
    takeChunkMemoryFrom(sourceBuffers);
    const renderer = createSharpTileRenderer();
    let runNo = 0;

    /** One cold run: a new spec, a new z start, an empty source cache. Returns tiles/s and cache counts. */
    async function run(which: string): Promise<{ rate: number; misses: number; bytes: number }> {
      const manifest = manifests[which]!;
      runNo++;
      const spec = RenderSpec.parse({ channels: [{ index: 0, window: [100 + runNo, 3000 + runNo] }, { index: 1, window: [100 + runNo, 6000 + runNo] }], format: 'jpeg', quality: 85 });
      const z0 = (runNo * 7) % (SIZE_Z - Z_PER_RUN);
      const cache = new LruByteCache<string, SourceTile | DecodedChunk>({
        maxBytes: SOURCE_CACHE_MB * 1024 * 1024,
        dispose: (value) => {
          if (ArrayBuffer.isView(value.data)) sourceBuffers.retire(value.data.buffer);
        },
      });
      const jobs: { z: number; x: number; y: number }[] = [];
      for (let z = z0; z < z0 + Z_PER_RUN; z++) for (let y = VIEW.y0; y < VIEW.y0 + VIEW.rows; y++) for (let x = VIEW.x0; x < VIEW.x0 + VIEW.cols; x++) jobs.push({ z, x, y });
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < jobs.length) {
            const { z, x, y } = jobs[next++]!;
            const ticket = sourceBuffers.enter();
            try {
              await renderer.render({
                manifest,
                stats: undefined,
                spec,
                tile: { level: 0, z, t: 0, x, y, format: 'jpeg' },
                // The worker's two read paths (apps/worker/src/render-service.ts).
                readSource: (c) =>
                  manifest.source
                    ? pixels.read(manifest, { level: 0, t: 0, z, c, x, y }, cache, sourceBuffers)
                    : (cache.getOrLoad(`${which}/${z}/${c}/${x}/${y}`, () => readSourceTile(store, manifest.id, manifest.version, { level: 0, t: 0, z, c, x, y }, sourceBuffers)) as Promise<SourceTile>),
              });
            } finally {
              sourceBuffers.leave(ticket);
            }
          }
        }),
      );
      const rate = jobs.length / ((performance.now() - start) / 1000);
      const s = cache.stats();
      cache.clear();
      return { rate, misses: s.misses, bytes: s.bytes };
    }

    // Linked = copied, one tile per layout (a bench of wrong pixels would be worthless).
    const check = RenderSpec.parse({ channels: [{ index: 0, window: [100, 3000] }, { index: 1, window: [100, 6000] }], format: 'png' });
    const tileOf = async (m: DatasetManifest) => (await renderer.render({ manifest: m, stats: undefined, spec: check, tile: { level: 0, z: 33, t: 0, x: 2, y: 1, format: 'png' }, readSource: (c) => pixels.read(m, { level: 0, t: 0, z: 33, c, x: 2, y: 1 }, new LruByteCache({ maxBytes: 1 << 26 })) })).body;
    const reference = await tileOf(manifests.copied);
    for (const l of LAYOUTS) if (!(await tileOf(manifests[l.name]!)).equals(reference)) throw new Error(`${l.name}: linked tile differs from the copied one`);

    for (const which of ['copied', ...LAYOUTS.map((l) => l.name)]) await run(which); // warm-up, not counted
    const rates: Record<string, number[]> = {};
    const last: Record<string, { misses: number; bytes: number }> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of ['copied', ...LAYOUTS.map((l) => l.name)]) {
        const r = await run(which);
        (rates[which] ??= []).push(r.rate);
        last[which] = r;
      }
    }
    const copied = median(rates.copied!);
    const tiles = Z_PER_RUN * VIEW.cols * VIEW.rows;
    console.log(
      `zarr bench: ${tiles} cold tiles per run (${VIEW.cols}×${VIEW.rows} viewport × ${Z_PER_RUN} z, 2-channel JPEG q85), ${IN_FLIGHT} in flight, source cache ${SOURCE_CACHE_MB} MB empty at each run's start, median of ${ROUNDS} interleaved rounds, node ${process.version}`,
    );
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
    console.log(`copied source (256² source tiles, ${manifests.copied.sourceEncoding}): ${copied.toFixed(1)} tiles/s (range ${range(rates.copied!)})`);
    for (const l of LAYOUTS) {
      const linked = median(rates[l.name]!);
      const r = last[l.name]!;
      // Ratio per round (linked ÷ the copied run of the same round), whose range shows the spread.
      const ratios = rates[l.name]!.map((v, i) => v / rates.copied![i]!);
      console.log(
        `linked Zarr, chunks ${l.label}: ${linked.toFixed(1)} tiles/s (range ${range(rates[l.name]!)}), linked/copied ${(linked / copied).toFixed(2)} (per round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; goal >= 0.8); chunk reads per run ${r.misses}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
