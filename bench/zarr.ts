/**
 * npm run bench:zarr: cold tiles/s of a linked OME-Zarr ÷ the same image copied into tilefarm's own
 * source tiles, in one run, for Zarr chunks of 256², 1024² and 64³ (issue 13: goal ≥ 0.8).
 *
 * The image: 2 channels × 64 z × 1024², uint16, microscopy-like (offset, noise, blobs), written by
 * Python's zarr (bench/support/zarr-bench-image.py, Blosc lz4 + shuffle) once per chunking; the
 * copied source is the same image registered with mode "copy" (linkZarr, as the API's job does).
 *
 * Each run is what a worker does for one viewer scrolling through z: a 3 × 3-tile viewport at level 0
 * over 16 consecutive z slices (144 tiles, 2-channel composites, JPEG), 4 renders in flight (as
 * many as a 2-core machine's two workers run, WORKER_CONCURRENCY 2 each, here in one process),
 * through the worker's own read path (DatasetPixels + the byte-bounded source cache, SOURCE_CACHE_MB
 * default 64, and its pool of source-tile memory: the cache gives a tile's memory back when it drops
 * it, each render holds a ticket while it reads) and the real renderer (sharp). The pool lives
 * across runs as in a worker; the cache is emptied (its memory given back) at each run's end.
 * Cold means:
 *  - every run has a new spec (a window no run used before) and starts at a new z slice, so no
 *    rendered tile exists (there is no tile cache in this path at all);
 *  - no source tile or chunk the run reads is in the source cache when it starts, so all of them
 *    come from the store; within a run, a decoded chunk serves every tile and z it covers while it
 *    stays in the cache — that re-use is the point of chunk caching and is counted.
 * What the cache holds instead (START_CACHE): "full" (default) — filled, untimed, with chunks or
 * source tiles the run never reads, as in a worker that has been serving the image, so the run's
 * reads evict them and land in their memory; "empty" — as in a worker just started, every chunk
 * lands in fresh memory (until session 6 the only mode; it cost the 1024² chunks most).
 * What stays warm: the OS page cache (files just written, local disk), the opened Zarr's metadata
 * (a worker keeps it 10 s), sharp/JIT (a warm-up run is not counted).
 * Figures: median of BENCH_ROUNDS (3) interleaved rounds; CPU per tile is the process's (every
 * thread), with the fresh buffers the worker's pool had to allocate per run and the process's minor
 * page faults per tile (memory touched for the first time: on this VM ~15 µs per 4 KB page), and
 * the source cache's misses per run (entries read from the store: a source tile, a chunk, or for
 * 64³ chunks a tile's stack of 16 planes, each 16 chunks' windows). After each run, the
 * same source tiles or chunks are read and decoded once more, alone (no render, no cache; of a
 * chunk deeper than one z only the planes the run shows, as Blosc can): the least any reader must
 * spend on them. From it, a ceiling per layout: the
 * ratio a CPU-bound run would reach if everything but those reads cost what the copied run's does,
 * for the median and for each round: a round of 64³ chunks whose 16 slices lie in two of a chunk's
 * Blosc blocks (c-blosc decodes whole blocks; the bench image's hold 32 planes) decodes twice what
 * a round inside one block does, so its ceiling, and its ratio, are lower.
 * Chunks' rows are copied into tiles as the worker copies them: by the C kernel where it is built
 * (PixelKernels.copyRows); ZARR_ROW_COPIES=javascript copies them by set() per row instead, for A/B.
 * It is a report, not a test.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RenderSpec, type DatasetManifest, type SourceTile } from '@tilefarm/contracts';
import { DatasetCatalog, SourceBufferPool, poolArenaBytesFor, readSourceTile } from '@tilefarm/datasets';
import { LruByteCache, fastestPixelKernels } from '@tilefarm/render';
import { configureSharp, createSharpTileRenderer } from '@tilefarm/render/encoder';
import { LocalObjectStore } from '@tilefarm/storage';
import { DatasetPixels, linkZarr, openZarrImage, reportZarrCodecsTo, zarrPlaceResolver, zarritaLibrary, type DecodedChunk, type OpenedZarr } from '@tilefarm/zarr';
import { minorFaults } from './support/process-cpu';

const SIZE_C = 2;
const SIZE_Z = 64;
const SIDE = 1024;
const VIEW = { x0: 1, y0: 1, cols: 3, rows: 3 };
const Z_PER_RUN = 16;
const IN_FLIGHT = 4;
const SOURCE_CACHE_MB = Number(process.env.SOURCE_CACHE_MB ?? 64);
/** The worker's read-ahead beside it (SOURCE_READAHEAD_MB, default 32): Blosc blocks' other halves. */
const SOURCE_READAHEAD_MB = Number(process.env.SOURCE_READAHEAD_MB ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROW_COPIES = process.env.ZARR_ROW_COPIES ?? 'kernel';
/** What the source cache holds when a run starts: "full" of other chunks (a running worker) or "empty" (a new one). */
const START_CACHE = process.env.START_CACHE ?? 'full';
if (START_CACHE !== 'full' && START_CACHE !== 'empty') throw new Error(`START_CACHE must be "full" or "empty", not ${START_CACHE}`);
const LAYOUTS = [
  { name: 'c256', label: '256² (1×1×256×256)', chunkZ: 1, chunkYX: 256 },
  { name: 'c1024', label: '1024² (1×1×1024×1024)', chunkZ: 1, chunkYX: 1024 },
  { name: 'c64', label: '64³ (1×64×64×64)', chunkZ: 64, chunkYX: 64 },
];

/** ZARR_PROFILE_DIR=dir: a CPU profile of the main thread for each timed run, nothing else, written there. */
const PROFILE_DIR = process.env.ZARR_PROFILE_DIR;
const session = PROFILE_DIR ? new Session() : undefined;
const post = (method: string) => new Promise<unknown>((resolve, reject) => session!.post(method, (e, r) => (e ? reject(e) : resolve(r))));
if (session) {
  mkdirSync(PROFILE_DIR!, { recursive: true });
  session.connect();
  session.post('Profiler.enable');
}

/** The chunkings measured (ZARR_LAYOUTS=c1024,c64: some of them, e.g. under a profiler); all are written and checked. */
const MEASURED = LAYOUTS.filter((l) => !process.env.ZARR_LAYOUTS || process.env.ZARR_LAYOUTS.split(',').includes(l.name));

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

    const kernels = fastestPixelKernels();
    const pixels = new DatasetPixels(store, places, 2 ** 40, ROW_COPIES === 'javascript' ? { stacks: true } : { copyRows: kernels.copyRows, stacks: true });
    console.log(`chunk rows copied by ${ROW_COPIES === 'javascript' ? 'set() per row (ZARR_ROW_COPIES=javascript)' : `the ${kernels.implementation} kernel`}`);
    // As apps/worker/src/main.ts builds them.
    const sourceBuffers = new SourceBufferPool({ arenaBytes: poolArenaBytesFor((SOURCE_CACHE_MB + SOURCE_READAHEAD_MB) * 1024 * 1024) });
    const renderer = createSharpTileRenderer();
    let runNo = 0;

    /**
     * One cold run: a new spec, a new z start, a source cache holding nothing the run reads. With
     * START_CACHE "full" the cache is first filled (untimed) with chunks / source tiles the run never
     * reads, as in a worker that has been serving the image: the run's reads then evict them and
     * reuse their memory. With "empty" it starts empty, as a worker just started: every chunk lands in
     * fresh memory. Returns tiles/s, the process's CPU per tile (all threads) and the run's reads.
     */
    async function run(which: string): Promise<{ rate: number; cpuMs: number; misses: number; readAhead: { kept: number; read: number }; fresh: number; faults: number; z0: number }> {
      const manifest = manifests[which]!;
      runNo++;
      const spec = RenderSpec.parse({ channels: [{ index: 0, window: [100 + runNo, 3000 + runNo] }, { index: 1, window: [100 + runNo, 6000 + runNo] }], format: 'jpeg', quality: 85 });
      const z0 = (runNo * 7) % (SIZE_Z - Z_PER_RUN);
      const cache = new LruByteCache<string, SourceTile | DecodedChunk>({
        maxBytes: SOURCE_CACHE_MB * 1024 * 1024,
        maxOfferBytes: SOURCE_READAHEAD_MB * 1024 * 1024,
        dispose: (value, lastRead) => {
          if (ArrayBuffer.isView(value.data)) sourceBuffers.retire(value.data, lastRead);
        },
        readClock: () => sourceBuffers.latestTicket(),
      });
      // The worker's two read paths (apps/worker/src/render-service.ts).
      const readSource = (c: number, z: number, x: number, y: number) =>
        manifest.source
          ? pixels.read(manifest, { level: 0, t: 0, z, c, x, y }, cache, sourceBuffers)
          : (cache.getOrLoad(`${which}/${z}/${c}/${x}/${y}`, () => readSourceTile(store, manifest.id, manifest.version, { level: 0, t: 0, z, c, x, y }, sourceBuffers)) as Promise<SourceTile>);
      if (START_CACHE === 'full') await fill(which, z0, cache, readSource);
      const before = cache.stats();
      const jobs: { z: number; x: number; y: number }[] = [];
      for (let z = z0; z < z0 + Z_PER_RUN; z++) for (let y = VIEW.y0; y < VIEW.y0 + VIEW.rows; y++) for (let x = VIEW.x0; x < VIEW.x0 + VIEW.cols; x++) jobs.push({ z, x, y });
      let next = 0;
      const freshBefore = sourceBuffers.stats().fresh;
      if (PROFILE_DIR) await post('Profiler.start');
      const start = performance.now();
      const faults = minorFaults();
      const cpu = process.cpuUsage();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < jobs.length) {
            const { z, x, y } = jobs[next++]!;
            const ticket = sourceBuffers.enter();
            try {
              await renderer.render({ manifest, stats: undefined, spec, tile: { level: 0, z, t: 0, x, y, format: 'jpeg' }, readSource: (c) => readSource(c, z, x, y) });
            } finally {
              sourceBuffers.leave(ticket);
            }
          }
        }),
      );
      const rate = jobs.length / ((performance.now() - start) / 1000);
      const used = process.cpuUsage(cpu);
      const faultsPerTile = (minorFaults() - faults) / jobs.length;
      if (PROFILE_DIR) {
        const { profile } = (await post('Profiler.stop')) as { profile: object };
        writeFileSync(join(PROFILE_DIR, `${which}-${runNo}.cpuprofile`), JSON.stringify(profile));
      }
      const after = cache.stats();
      const misses = after.misses - before.misses;
      const readAhead = { kept: after.offersKept - before.offersKept, read: after.offersRead - before.offersRead };
      // Buffers the pool's arena had no room for (fresh memory: page faults, and the collector's work).
      const fresh = sourceBuffers.stats().fresh - freshBefore;
      cache.clear();
      return { rate, cpuMs: (used.user + used.system) / 1000 / jobs.length, misses, readAhead, fresh, faults: faultsPerTile, z0 };
    }

    /**
     * Fills the cache, untimed, with reads that share no chunk with the run's: for chunks one z deep
     * (and the copied source) the viewport at z outside the run's; for 64³ chunks, which hold every z
     * of the image, the tiles outside the viewport (at the run's z: the plane windows they keep lie
     * in chunks the run never reads).
     */
    async function fill(which: string, z0: number, cache: LruByteCache<string, SourceTile | DecodedChunk>, readSource: (c: number, z: number, x: number, y: number) => Promise<unknown>): Promise<void> {
      const deep = (LAYOUTS.find((l) => l.name === which)?.chunkZ ?? 1) > 1;
      const inView = (x: number, y: number) => x >= VIEW.x0 && x < VIEW.x0 + VIEW.cols && y >= VIEW.y0 && y < VIEW.y0 + VIEW.rows;
      const reads: { z: number; x: number; y: number }[] = [];
      for (let dz = Z_PER_RUN; dz < SIZE_Z; dz++) {
        const z = (z0 + dz) % SIZE_Z;
        for (let y = 0; y < SIDE / 256; y++) for (let x = 0; x < SIDE / 256; x++) if (deep ? !inView(x, y) : inView(x, y)) reads.push({ z, x, y });
      }
      const full = () => cache.stats().bytes >= 0.9 * cache.stats().maxBytes;
      for (const { z, x, y } of reads) {
        if (full()) return;
        const ticket = sourceBuffers.enter();
        try {
          for (let c = 0; c < SIZE_C; c++) await readSource(c, z, x, y);
        } finally {
          sourceBuffers.leave(ticket);
        }
      }
    }

    /**
     * The least a run's reads can cost: every source tile (copied) or chunk (linked) the run needs,
     * read and decoded once (of a deep chunk, only the planes the run shows), no render, no cache,
     * one after another. CPU ms per rendered tile.
     */
    const opened: Record<string, OpenedZarr> = {};
    async function leastReadCost(which: string, z0: number): Promise<number> {
      const cpu = process.cpuUsage();
      const layout = LAYOUTS.find((l) => l.name === which);
      if (!layout) {
        for (let z = z0; z < z0 + Z_PER_RUN; z++)
          for (let y = VIEW.y0; y < VIEW.y0 + VIEW.rows; y++)
            for (let x = VIEW.x0; x < VIEW.x0 + VIEW.cols; x++)
              for (let c = 0; c < SIZE_C; c++) sourceBuffers.retire((await readSourceTile(store, manifests.copied!.id, manifests.copied!.version, { level: 0, t: 0, z, c, x, y }, sourceBuffers)).data);
      } else {
        const url = `${which}.zarr`;
        const { image, arrays } = (opened[which] ??= await openZarrImage(places(url), zarritaLibrary, url, 2 ** 40));
        const step = { z: layout.chunkZ, y: layout.chunkYX, x: layout.chunkYX };
        const span = { z: [z0, z0 + Z_PER_RUN - 1], y: [VIEW.y0 * 256, (VIEW.y0 + VIEW.rows) * 256 - 1], x: [VIEW.x0 * 256, (VIEW.x0 + VIEW.cols) * 256 - 1] } as const;
        const ranges = image.axes.map((a) => (a === 't' ? [0] : a === 'c' ? Array.from({ length: SIZE_C }, (_, i) => i) : Array.from({ length: Math.floor(span[a][1] / step[a]) - Math.floor(span[a][0] / step[a]) + 1 }, (_, i) => Math.floor(span[a][0] / step[a]) + i)));
        const coords: number[][] = ranges.reduce<number[][]>((acc, r) => acc.flatMap((prefix) => r.map((v) => [...prefix, v])), [[]]);
        // Of a chunk deeper than one z, only the planes the run shows: a decoder that can decode
        // part of a chunk (Blosc: the blocks holding them) need not do more.
        const iz = image.axes.indexOf('z');
        const planesOf = (at: number[]) => {
          if (iz < 0 || layout.chunkZ === 1) return undefined;
          const first = at[iz]! * layout.chunkZ;
          return { axis: iz, from: Math.max(z0, first) - first, to: Math.min(z0 + Z_PER_RUN - 1, first + layout.chunkZ - 1) - first };
        };
        for (const at of coords) sourceBuffers.recycle((await arrays[0]!.getChunk(at, planesOf(at), sourceBuffers)).data as unknown as ArrayBufferView);
      }
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1000 / (Z_PER_RUN * VIEW.cols * VIEW.rows);
    }

    /**
     * For chunks deeper than one z: how many of each chunk's Blosc blocks a run from z0 reads (the
     * block size from the header of the first chunk, as c-blosc chose it when Python's zarr wrote it).
     */
    const planesPerBlock = new Map<string, number>();
    const bloscBlocksOf = (which: string, z0: number): string => {
      const layout = LAYOUTS.find((l) => l.name === which);
      if (!layout || layout.chunkZ === 1) return '';
      if (!planesPerBlock.has(which)) planesPerBlock.set(which, readFileSync(join(dir, `${which}.zarr/0/0/0/0/0`)).readUInt32LE(8) / (layout.chunkYX * layout.chunkYX * 2));
      const planes = planesPerBlock.get(which)!;
      const blocks = Math.floor((z0 + Z_PER_RUN - 1) / planes) - Math.floor(z0 / planes) + 1;
      return `, ${blocks} Blosc block${blocks === 1 ? '' : 's'} of ${planes} planes per chunk`;
    };

    // Linked = copied, one tile per layout (a bench of wrong pixels would be worthless).
    const check = RenderSpec.parse({ channels: [{ index: 0, window: [100, 3000] }, { index: 1, window: [100, 6000] }], format: 'png' });
    const tileOf = async (m: DatasetManifest) => (await renderer.render({ manifest: m, stats: undefined, spec: check, tile: { level: 0, z: 33, t: 0, x: 2, y: 1, format: 'png' }, readSource: (c) => pixels.read(m, { level: 0, t: 0, z: 33, c, x: 2, y: 1 }, new LruByteCache({ maxBytes: 1 << 26 })) })).body;
    const reference = await tileOf(manifests.copied);
    for (const l of LAYOUTS) if (!(await tileOf(manifests[l.name]!)).equals(reference)) throw new Error(`${l.name}: linked tile differs from the copied one`);

    for (const which of ['copied', ...MEASURED.map((l) => l.name)]) await run(which); // warm-up, not counted
    const rates: Record<string, number[]> = {};
    const cpuMs: Record<string, number[]> = {};
    const leastMs: Record<string, number[]> = {};
    const reads: Record<string, string[]> = {};
    const fresh: Record<string, number[]> = {};
    const faults: Record<string, number[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of ['copied', ...MEASURED.map((l) => l.name)]) {
        const r = await run(which);
        (rates[which] ??= []).push(r.rate);
        (cpuMs[which] ??= []).push(r.cpuMs);
        (fresh[which] ??= []).push(r.fresh);
        (faults[which] ??= []).push(r.faults);
        (leastMs[which] ??= []).push(await leastReadCost(which, r.z0));
        // This round's ceiling, from the copied run of the same round (see leastReadCost).
        const roundCeiling = cpuMs.copied![round]! / (cpuMs.copied![round]! - leastMs.copied![round]! + leastMs[which]![round]!);
        (reads[which] ??= []).push(`${r.misses}${r.readAhead.kept > 0 ? ` + ${r.readAhead.read}/${r.readAhead.kept}` : ''} from z ${r.z0}${bloscBlocksOf(which, r.z0)}${which === 'copied' ? '' : ` (${(r.rate / rates.copied![round]!).toFixed(2)}, ceiling ${roundCeiling.toFixed(2)})`}`);
      }
    }
    const copied = median(rates.copied!);
    const tiles = Z_PER_RUN * VIEW.cols * VIEW.rows;
    const startsWith = START_CACHE === 'full' ? 'full of chunks the run never reads' : 'empty';
    console.log(
      `zarr bench: ${tiles} cold tiles per run (${VIEW.cols}×${VIEW.rows} viewport × ${Z_PER_RUN} z, 2-channel JPEG q85), ${IN_FLIGHT} in flight, source cache ${SOURCE_CACHE_MB} MB ${startsWith} at each run's start (START_CACHE=${START_CACHE}), median of ${ROUNDS} interleaved rounds, node ${process.version}`,
    );
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
    const cpu = (which: string) => `${median(cpuMs[which]!).toFixed(2)} ms CPU per tile (reading each source ${which === 'copied' ? 'tile' : 'chunk'} once alone: ${median(leastMs[which]!).toFixed(2)}), ${median(fresh[which]!)} fresh pool buffers per run, ${median(faults[which]!).toFixed(0)} minor page faults per tile`;
    console.log(`copied source (256² source tiles, ${manifests.copied.sourceEncoding}): ${copied.toFixed(1)} tiles/s (range ${range(rates.copied!)}), ${cpu('copied')}`);
    for (const l of MEASURED) {
      const linked = median(rates[l.name]!);
      // Ratio per round (linked ÷ the copied run of the same round), whose range shows the spread.
      const ratios = rates[l.name]!.map((v, i) => v / rates.copied![i]!);
      console.log(
        `linked Zarr, chunks ${l.label}: ${linked.toFixed(1)} tiles/s (range ${range(rates[l.name]!)}), linked/copied ${(linked / copied).toFixed(2)} (per round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; goal >= 0.8); ${cpu(l.name)}; source cache misses per round ${reads[l.name]!.join(', ')}${l.chunkZ > 1 ? ` (+ read-ahead stacks read/kept, SOURCE_READAHEAD_MB=${SOURCE_READAHEAD_MB})` : ''}`,
      );
      // Were everything but the reads as cheap as the copied source's, CPU-bound runs would reach this.
      const copiedCpu = median(cpuMs.copied!);
      const ceiling = copiedCpu / (copiedCpu - median(leastMs.copied!) + median(leastMs[l.name]!));
      console.log(`  ceiling set by reading each chunk once and decoding what the run shows of it (copied CPU per tile with its reads swapped for these): ${ceiling.toFixed(2)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
