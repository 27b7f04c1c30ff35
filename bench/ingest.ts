/**
 * npm run bench:ingest — a report, not a test. Writes a ≥ 2 GB uint16 TIFF (one 32768² page,
 * uncompressed strips of 64 rows, streamed to disk) in a temp dir, ingests it into a local store,
 * prints MP/s, peak RSS and the claimed memory bound, then measures source-tile encodings and
 * libvips reading the same file. Everything it writes is deleted at the end.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { DatasetCatalog, decodeSourceTile, encodeSourceTile, readSourceTile } from '@tilefarm/datasets';
import { LocalObjectStore } from '@tilefarm/storage';
import { ingestFile } from '@tilefarm/ingest';
import { writeTiff } from '../packages/ingest/test/support/tiff-writer';

const SIDE = Number(process.env.BENCH_SIDE ?? 32768);
const TILE = 256;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

/** Microscopy-like content: camera offset ~100, noise, and bright structures on a 64-px grid. */
function rows(y0: number, y1: number): Uint16Array {
  const out = new Uint16Array((y1 - y0) * SIDE);
  let s = (y0 * 2654435761) >>> 0 || 1;
  for (let y = y0; y < y1; y++) {
    const o = (y - y0) * SIDE;
    for (let x = 0; x < SIDE; x++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const cell = ((x >> 6) ^ (y >> 6)) & 7;
      out[o + x] = 100 + ((s >>> 0) & 31) + (cell === 3 ? 1500 + ((x * y) & 255) : 0);
    }
  }
  return out;
}

function time<T>(n: number, f: () => T): number {
  for (let i = 0; i < Math.min(20, n); i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) * 1000) / n; // µs per call
}

async function timeAsync(n: number, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f();
  return ((performance.now() - t0) * 1000) / n;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-bench-ingest-'));
  try {
    const file = join(dir, 'big.tif');
    const tw = performance.now();
    writeTiff(file, [{ width: SIDE, height: SIDE, bits: 16, rows, rowsPerStrip: 64 }]);
    const size = statSync(file).size;
    console.log(`source: ${SIDE}×${SIDE} uint16, 1 page, uncompressed strips of 64 rows: ${(size / 1e9).toFixed(2)} GB (written in ${((performance.now() - tw) / 1000).toFixed(1)} s)`);
    const boundBytes = 3 * TILE * SIDE * 2 + 64 * SIDE * 2 + 16 * 140_000;
    console.log(`claimed bound for this file: 3 × tileSize × width × 2 B (read band + level cascade) + one strip + 16 tiles in flight ≈ ${mb(boundBytes)} above the process baseline`);
    const baseline = process.memoryUsage().rss;
    peakRss = baseline;
    const store = new LocalObjectStore(join(dir, 'store'));
    const catalog = new DatasetCatalog(store);
    const t0 = performance.now();
    let lastLog = 0;
    const m = await ingestFile({
      path: file,
      id: 'bench',
      catalog,
      onProgress: (p) => {
        const now = performance.now();
        if (now - lastLog > 10_000) {
          lastLog = now;
          console.log(`  ${p.phase} ${p.done}/${p.total} tiles, rss ${mb(process.memoryUsage().rss)}`);
        }
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const mp = (SIDE * SIDE) / 1e6;
    const peakOs = process.resourceUsage().maxRSS * 1024;
    console.log(`ingest: ${m.levels} levels, ${seconds.toFixed(1)} s, ${(mp / seconds).toFixed(1)} MP/s (${(size / 2 ** 20 / seconds).toFixed(0)} MB/s of source)`);
    console.log(`RSS: baseline before ingest ${mb(baseline)}, peak during ingest ${mb(Math.max(peakRss, peakOs))} (sampled ${mb(peakRss)}, OS maxRSS ${mb(peakOs)}), growth ${mb(Math.max(peakRss, peakOs) - baseline)} vs bound ${mb(boundBytes)}`);

    // A real tile of the stored pyramid for the encoding comparison.
    const tile = await readSourceTile(store, 'bench', 1, { level: 0, t: 0, z: 0, c: 0, x: 7, y: 7 });
    await encodings(tile.data as Uint16Array, 'bench tile (noise + structures)');

    // libvips on the same file: a band read through sharp, for the reader decision.
    const before = process.memoryUsage().rss;
    const tb = performance.now();
    let n = 0;
    for (let y = 0; y < 8 * TILE; y += TILE) {
      const band = await sharp(file, { limitInputPixels: false }).extract({ left: 0, top: SIDE / 2 + y, width: SIDE, height: TILE }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
      n += band.length;
    }
    const sharpMs = (performance.now() - tb) / 8;
    console.log(`sharp/libvips: one ${SIDE}×${TILE} band from the middle: ${sharpMs.toFixed(0)} ms per band (rss +${mb(process.memoryUsage().rss - before)}, ${n} bytes read)`);
    rmSync(join(dir, 'store'), { recursive: true, force: true });
  } finally {
    clearInterval(sampler);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** raw-deflate-v1 (levels 1 and 6) versus 16-bit PNG through sharp, for one 256² uint16 tile. */
async function encodings(data: Uint16Array, what: string): Promise<void> {
  const tile = { width: TILE, height: TILE, dtype: 'uint16' as const, data };
  const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const d1 = encodeSourceTile(tile, 1);
  const d6 = encodeSourceTile(tile, 6);
  const png = await sharp(data, { raw: { width: TILE, height: TILE, channels: 1 } }).toColourspace('grey16').png({ compressionLevel: 6 }).toBuffer();
  const png1 = await sharp(data, { raw: { width: TILE, height: TILE, channels: 1 } }).toColourspace('grey16').png({ compressionLevel: 1 }).toBuffer();
  console.log(`source tile encodings, ${what}, 256² uint16 (${raw.length} bytes raw):`);
  console.log(`  raw-deflate-v1 level 1: ${d1.length} B, encode ${time(300, () => deflateRawSync(raw, { level: 1 })).toFixed(0)} µs, decode ${time(1000, () => decodeSourceTile(d1)).toFixed(0)} µs`);
  console.log(`  raw-deflate-v1 level 6: ${d6.length} B, encode ${time(100, () => deflateRawSync(raw, { level: 6 })).toFixed(0)} µs, decode ${time(1000, () => decodeSourceTile(d6)).toFixed(0)} µs`);
  const decodePng = (b: Buffer) => () => sharp(b).raw({ depth: 'ushort' }).toBuffer();
  console.log(`  PNG 16-bit (sharp) level 6: ${png.length} B, decode ${(await timeAsync(300, decodePng(png))).toFixed(0)} µs`);
  console.log(`  PNG 16-bit (sharp) level 1: ${png1.length} B, decode ${(await timeAsync(300, decodePng(png1))).toFixed(0)} µs`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
