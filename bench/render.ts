/**
 * npm run bench:render: tiles/s of the render engine against the encoder's own ceiling, in one run.
 *
 * 256x256 tiles from three uint16 channels (colour, explicit windows, add composite), 4 tiles in
 * flight (the worker's concurrency: ~2 per core on 2 cores), for:
 *   cached  - decoded source tiles already in memory (the worker's source cache hit path)
 *   cold    - every read is readSourceTile from a LocalObjectStore on disk (the worker's read path without
 *             its cache; files in the OS page cache): raw-v1 (the default: the samples as stored, viewed
 *             in place) and raw-deflate-v1 (inflateRawSync on the main thread)
 *   ceiling - sharp encoding a ready 256x256x3 RGB buffer of the same picture, same format and concurrency
 * It is a report, not a test: nothing here fails on slow machines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetManifest, RenderSpec, type ImageFormat, type SourceEncoding, type SourceTile } from '@tilefarm/contracts';
import { decodeSourceTile, encodeSourceTileAs, readSourceTile, sourceTileKey } from '@tilefarm/datasets';
import { createTileRenderer, fastestPixelKernels, javascriptPixelKernels } from '@tilefarm/render';
import { configureSharp, createSharpTileRenderer, SharpTileEncoder } from '@tilefarm/render/encoder';
import { LocalObjectStore } from '@tilefarm/storage';

const TILE = 256;
const CHANNELS = 3;
const POSITIONS = 48; // distinct tile positions (so the encoder sees varied content)
const IN_FLIGHT = 4;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
/** Figures are taken in interleaved rounds and the median kept: this VM's speed drifts by ±20 % over a minute. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const manifest = DatasetManifest.parse({
  v: 1,
  id: 'bench',
  version: 1,
  width: TILE * 8,
  height: TILE * 6,
  sizeZ: 1,
  sizeT: 1,
  tileSize: TILE,
  levels: 1,
  dtype: 'uint16',
  channels: [
    { label: 'DAPI', color: '#0000ff', window: [200, 30000] },
    { label: 'GFP', color: '#00ff00', window: [500, 20000] },
    { label: 'RFP', color: '#ff0000', window: [300, 40000] },
  ],
  sourceEncoding: 'raw-deflate-v1',
  createdAt: new Date(0).toISOString(),
});

/** Microscopy-like content: smooth blobs per channel plus shot-like noise (so it compresses like real data). */
function makeTile(c: number, pos: number): Uint16Array {
  const out = new Uint16Array(TILE * TILE);
  let seed = (c + 1) * 7919 + pos * 104729;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const blobs = Array.from({ length: 12 }, () => [rand() * TILE, rand() * TILE, 8 + rand() * 40, 3000 + rand() * 30000]);
  for (let y = 0; y < TILE; y++) {
    for (let x = 0; x < TILE; x++) {
      let v = 400 + 200 * Math.sin((x + pos * 13) / 37 + c);
      for (const [bx, by, r, a] of blobs as number[][]) {
        const d2 = ((x - (bx as number)) ** 2 + (y - (by as number)) ** 2) / ((r as number) * (r as number));
        if (d2 < 4) v += (a as number) * Math.exp(-d2);
      }
      v += (rand() - 0.5) * 300;
      out[y * TILE + x] = Math.max(0, Math.min(65535, Math.round(v)));
    }
  }
  return out;
}

const decoded: Uint16Array[][] = [];
for (let p = 0; p < POSITIONS; p++) {
  decoded.push([]);
  for (let c = 0; c < CHANNELS; c++) decoded[p]!.push(makeTile(c, p));
}

/** The same tiles on disk in each source encoding, one dataset version per encoding. */
const ENCODINGS: SourceEncoding[] = ['raw-v1', 'raw-deflate-v1'];
const storeDir = mkdtempSync(join(tmpdir(), 'tilefarm-bench-render-'));
const store = new LocalObjectStore(storeDir);
const storedBytes: Record<string, number> = {};
async function writeSources(): Promise<void> {
  for (const [v, encoding] of ENCODINGS.entries()) {
    storedBytes[encoding] = 0;
    for (let p = 0; p < POSITIONS; p++) {
      for (let c = 0; c < CHANNELS; c++) {
        const body = encodeSourceTileAs(encoding, { width: TILE, height: TILE, dtype: 'uint16', data: decoded[p]![c]! });
        storedBytes[encoding] += body.length;
        await store.put(sourceTileKey('bench', v + 1, { level: 0, t: 0, z: 0, c, x: p % 8, y: Math.floor(p / 8) }), body);
      }
    }
  }
}

/** Run `job(i)` for i = 0, 1, 2, ... with IN_FLIGHT pending, for SECONDS; returns jobs/s. */
async function measure(job: (i: number) => Promise<unknown>): Promise<number> {
  // Warm-up: JIT and sharp's first calls.
  for (let i = 0; i < 40; i++) await job(i);
  let done = 0;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await job(next++);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

// PIXEL_KERNELS=javascript: the composite without the C kernels (the worker's knob of the same name).
const renderer = createSharpTileRenderer({ kernels: process.env.PIXEL_KERNELS === 'javascript' ? javascriptPixelKernels : fastestPixelKernels() });
const specFor = (format: ImageFormat): RenderSpec =>
  RenderSpec.parse({ channels: [{ index: 0 }, { index: 1 }, { index: 2, gamma: 0.8 }], format, quality: 85 });

function tileAt(i: number, format: ImageFormat) {
  const p = i % POSITIONS;
  return { level: 0, z: 0, t: 0, x: p % 8, y: Math.floor(p / 8), format };
}

async function renderTile(i: number, format: ImageFormat, read: (p: number, c: number) => Promise<SourceTile>) {
  const tile = tileAt(i, format);
  const p = tile.y * 8 + tile.x;
  return renderer.render({
    manifest,
    stats: undefined,
    spec: specFor(format),
    tile,
    readSource: (c) => read(p, c),
  });
}

const cachedRead = async (p: number, c: number): Promise<SourceTile> => ({ width: TILE, height: TILE, dtype: 'uint16', data: decoded[p]![c]! });
/** The worker's read path without its source cache: object store get + decode by header. */
const coldRead = (encoding: SourceEncoding) => (p: number, c: number) =>
  readSourceTile(store, 'bench', ENCODINGS.indexOf(encoding) + 1, { level: 0, t: 0, z: 0, c, x: p % 8, y: Math.floor(p / 8) });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const sharpState = configureSharp({ cache: false, concurrency: 1 });
  await writeSources();
  const rows: string[][] = [];
  const ratios: string[] = [];
  const detail: string[] = [];
  for (const format of ['jpeg', 'png'] as ImageFormat[]) {
    // The same pictures as ready RGB buffers, for the ceiling.
    const rgb: Uint8Array[] = [];
    const capture = createTileRenderer({
      encoder: { encode: async (buf) => (rgb.push(buf.slice()), Buffer.alloc(0)) },
    });
    for (let p = 0; p < POSITIONS; p++) {
      await capture.render({ manifest, stats: undefined, spec: specFor(format), tile: tileAt(p, format), readSource: (c) => cachedRead(p, c) });
    }
    const encoder = new SharpTileEncoder();
    const runs: number[][] = [[], [], [], []];
    for (let round = 0; round < ROUNDS; round++) {
      runs[0]!.push(await measure((i) => encoder.encode(rgb[i % POSITIONS]!, TILE, TILE, format, 85)));
      runs[1]!.push(await measure((i) => renderTile(i, format, cachedRead)));
      runs[2]!.push(await measure((i) => renderTile(i, format, coldRead('raw-v1'))));
      runs[3]!.push(await measure((i) => renderTile(i, format, coldRead('raw-deflate-v1'))));
    }
    const [ceiling, cached, cold, coldDeflate] = runs.map(median) as [number, number, number, number];
    let ms = { readMs: 0, compositeMs: 0, encodeMs: 0 };
    for (let i = 0; i < 200; i++) {
      const t = (await renderTile(i, format, cachedRead)).timings;
      ms = { readMs: ms.readMs + t.readMs / 200, compositeMs: ms.compositeMs + t.compositeMs / 200, encodeMs: ms.encodeMs + t.encodeMs / 200 };
    }
    rows.push([format, ceiling.toFixed(0), cached.toFixed(0), cold.toFixed(0), coldDeflate.toFixed(0), (cached / ceiling).toFixed(2), (cold / ceiling).toFixed(2), (coldDeflate / ceiling).toFixed(2)]);
    ratios.push(
      `${format}: cached/ceiling ${(cached / ceiling).toFixed(2)} (goal >= 0.60), cold/ceiling ${(cold / ceiling).toFixed(2)} with raw-v1 sources (goal >= 0.35; ${(coldDeflate / ceiling).toFixed(2)} with raw-deflate-v1)`,
    );
    detail.push(
      `${format}: per tile, one at a time (cached): read ${ms.readMs.toFixed(2)} ms, composite ${ms.compositeMs.toFixed(2)} ms, encode ${ms.encodeMs.toFixed(2)} ms`,
    );
  }

  // The optimiseCoding decision, measured on the same pictures.
  const rgbJpeg: Uint8Array[] = [];
  const capture = createTileRenderer({ encoder: { encode: async (buf) => (rgbJpeg.push(buf.slice()), Buffer.alloc(0)) } });
  for (let p = 0; p < POSITIONS; p++) {
    await capture.render({ manifest, stats: undefined, spec: specFor('jpeg'), tile: tileAt(p, 'jpeg'), readSource: (c) => cachedRead(p, c) });
  }
  const opt: string[] = [];
  for (const optimiseCoding of [false, true]) {
    const enc = new SharpTileEncoder({ jpegOptimiseCoding: optimiseCoding });
    let bytes = 0;
    for (const b of rgbJpeg) bytes += (await enc.encode(b, TILE, TILE, 'jpeg', 85)).length;
    const rate = await measure((i) => enc.encode(rgbJpeg[i % POSITIONS]!, TILE, TILE, 'jpeg', 85));
    opt.push(`optimiseCoding=${optimiseCoding}: ${rate.toFixed(0)} tiles/s, ${(bytes / rgbJpeg.length / 1024).toFixed(1)} KiB/tile`);
  }

  const head = ['format', 'ceiling/s', 'cached/s', 'cold/s', 'cold-deflate/s', 'cached/ceil', 'cold/ceil', 'cold-deflate/ceil'];
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => r.map((v, k) => v.padStart(widths[k]!)).join('  ');
  console.log(`render bench: ${TILE}x${TILE} tiles, ${CHANNELS} uint16 channels, ${IN_FLIGHT} in flight, median of ${ROUNDS} interleaved ${SECONDS}s runs per figure, node ${process.version}, sharp concurrency ${sharpState.concurrency}, libvips cache off`);
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  for (const r of ratios) console.log(r);
  for (const d of detail) console.log(d);
  console.log(`jpeg q85 encoder alone: ${opt.join('; ')}`);
  const perTile = (e: SourceEncoding) => storedBytes[e]! / (POSITIONS * CHANNELS);
  console.log(
    `source tiles stored (these tiles: blobs + noise): ${ENCODINGS.map((e) => `${e} ${(perTile(e) / 1024).toFixed(1)} KiB/tile`).join(', ')} (raw-deflate-v1 saves ${((1 - perTile('raw-deflate-v1') / perTile('raw-v1')) * 100).toFixed(0)} %)`,
  );
  const decodeUs = (e: SourceEncoding) => {
    const bodies: Buffer[] = [];
    for (let p = 0; p < POSITIONS; p++) bodies.push(encodeSourceTileAs(e, { width: TILE, height: TILE, dtype: 'uint16', data: decoded[p]![0]! }));
    const n = 2000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) decodeSourceTile(bodies[i % POSITIONS]!);
    return ((performance.now() - t0) / n) * 1000;
  };
  console.log(`decodeSourceTile per 256² uint16 tile: ${ENCODINGS.map((e) => `${e} ${decodeUs(e).toFixed(0)} µs`).join(', ')}`);
  rmSync(storeDir, { recursive: true, force: true });
  const mem = process.memoryUsage();
  console.log(`RSS ${(mem.rss / 1048576).toFixed(0)} MB (heap used ${(mem.heapUsed / 1048576).toFixed(0)} MB, external+arrayBuffers ${((mem.external + mem.arrayBuffers) / 1048576).toFixed(0)} MB)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
