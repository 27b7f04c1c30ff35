/**
 * npm run bench:zarr-register: registering a ~2 GB OME-Zarr keeps RSS ≤ 300 MB and shows progress
 * (issue 13). A report, not a test.
 *
 * The image: 1 channel × 64 z × 4096², uint16 (2.15 GB of samples at level 0), 4 levels, chunks
 * 1 × 1 × 1024 × 1024, Blosc lz4, written plane by plane by Python's zarr
 * (bench/support/zarr-bench-image.py; BENCH_SIDE / BENCH_Z change the size). Then, in this process,
 * the same code the worker's ingest job and the CLI run (linkZarr):
 *   link - metadata checked, statistics from the coarsest level with ≥ 1 Mpx per plane (1024² here)
 *   copy - statistics, then every level of every plane written as our own source tiles (all 2.8 GB read)
 * into a local store, sampling RSS every 50 ms and recording every progress report. Everything it
 * writes is deleted at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetCatalog } from '@tilefarm/datasets';
import { LocalObjectStore } from '@tilefarm/storage';
import { linkZarr, zarrPlaceResolver, zarritaLibrary } from '@tilefarm/zarr';

const SIDE = Number(process.env.BENCH_SIDE ?? 4096);
const SIZE_Z = Number(process.env.BENCH_Z ?? 64);
const SIZE_C = Number(process.env.BENCH_C ?? 1);
/** BENCH_CHUNKS=z:yx, e.g. 64:64 for 64³ chunks (2 channels or more: a plane of each channel per z). */
const [CHUNK_Z, CHUNK_YX] = (process.env.BENCH_CHUNKS ?? '1:1024').split(':').map(Number) as [number, number];
const LEVELS = Number(process.env.BENCH_LEVELS ?? 4);
/** BENCH_MODES=link: registration by link alone (copy reads and writes every level). */
const MODES = (process.env.BENCH_MODES ?? 'link,copy').split(',') as Array<'link' | 'copy'>;
const RSS_BOUND_MB = 300;
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

function duOf(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-bench-zarr-register-'));
  try {
    const t0 = performance.now();
    execFileSync('/usr/bin/python3', [join(__dirname, '../../../bench/support/zarr-bench-image.py'), dir, String(SIZE_C), String(SIZE_Z), String(SIDE), String(LEVELS), `big:${CHUNK_Z}:${CHUNK_YX}`], { stdio: 'ignore' });
    const rawBytes = SIDE * SIDE * SIZE_Z * SIZE_C * 2;
    console.log(
      `image: ${SIZE_C} c × ${SIZE_Z} z × ${SIDE}², uint16, ${LEVELS} levels, chunks 1×${CHUNK_Z}×${CHUNK_YX}×${CHUNK_YX}, Blosc lz4 — ${(rawBytes / 1e9).toFixed(2)} GB of samples at level 0, ${(duOf(join(dir, 'big.zarr')) / 1e9).toFixed(2)} GB on disk; written by python3-zarr in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    const places = zarrPlaceResolver({ ingestRoot: dir, s3: { region: 'us-east-1' } });
    const catalog = new DatasetCatalog(new LocalObjectStore(join(dir, 'store')));
    const rows: string[] = [];
    for (const mode of MODES) {
      if (global.gc) global.gc();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 50);
      const reports: { at: number; done: number; total: number; rss: number }[] = [];
      const start = performance.now();
      let lastPrinted = 0;
      const m = await linkZarr({
        url: 'big.zarr',
        place: places('big.zarr'),
        library: zarritaLibrary,
        id: mode,
        catalog,
        maxPixels: 2 ** 40,
        copy: mode === 'copy',
        onProgress: (done, total) => {
          const now = performance.now();
          const rss = process.memoryUsage().rss;
          peak = Math.max(peak, rss);
          reports.push({ at: now - start, done, total, rss });
          // The progress a user sees (the CLI prints like this off a terminal).
          if (now - lastPrinted > 5000 || done === total) {
            lastPrinted = now;
            console.log(`  ${mode}: ${((100 * done) / total).toFixed(1).padStart(5)}%  ${done}/${total}  ${((now - start) / 1000).toFixed(1)} s  RSS ${mb(rss)} MB`);
          }
        },
      });
      clearInterval(sampler);
      const seconds = (performance.now() - start) / 1000;
      const gaps = reports.map((r, i) => r.at - (reports[i - 1]?.at ?? 0));
      rows.push(
        `${mode}: ${seconds.toFixed(1)} s (${mode === 'copy' ? `${((rawBytes * 4) / 3 / 1e6 / seconds).toFixed(0)} MB/s of samples read and written, all levels` : 'statistics read from one level only'}), peak RSS ${mb(peak)} MB (${mb(before)} MB before; bound ${RSS_BOUND_MB} MB: ${peak <= RSS_BOUND_MB * 2 ** 20 ? 'held' : 'EXCEEDED'}), ` +
          `${reports.length} progress reports, first after ${((reports[0]?.at ?? 0) / 1000).toFixed(1)} s, longest gap ${(Math.max(...gaps) / 1000).toFixed(1)} s; v${m.version} ${m.width}×${m.height}×${m.sizeZ}, ${m.levels} levels`,
      );
    }
    console.log(`zarr registration bench (node ${process.version}):`);
    for (const r of rows) console.log(r);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
