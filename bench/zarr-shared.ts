/**
 * npm run bench:zarr-shared — what the machine's shared chunks (packages/zarr/src/shared-chunk-files.ts)
 * cost a worker per tile, against the same reads without them, in one run.
 *
 * bench:zarr's end-to-end part measures sharing inside everything else a tile costs, where its
 * share is smaller than the noise between runs. Here only the reads are timed, in one process:
 * two SharedChunkFiles on one directory in /dev/shm stand for two workers (each has its own arena,
 * as each worker process does), each with its own source cache (64 MB and offers, as a worker's).
 * The image: 2 channels × 64 z × 1024², uint16, 64³ chunks, whose "decode" is a copy of a prepared
 * chunk, with a Blosc block of 32 planes (so a decode also yields the window beside the one asked
 * for, offered to the cache and shared): the Blosc decode itself, which sharing saves the second
 * worker, is left out, so that what is measured is the sharing around it.
 * Per round (new keys, new caches; 12 rounds, the first 2 not counted), level-0 tiles (4 × 4 × 2
 * channels, each over 16 chunks: since session 20 one stack of the tile's planes per window, its
 * rows copied by the worker's kernel, as the worker reads), CPU per tile of one channel, median:
 *   decode, no sharing   - the baseline: z 8, every chunk's window decoded;
 *   decode and share     - the same with the shared chunks: the first worker claims, decodes and
 *                          writes what it decoded (the tile's stacks of planes 0-15 and 16-31);
 *   read back            - the second worker at z 9, 11, 13 and 15: every other plane of the
 *                          stacks the first decoded (two workers share a viewer's slices), read
 *                          back, none decoded (per tile, over the four planes);
 *   read back, next half - the same at z 17, 19, 21 and 23: the stacks of planes 16-31.
 * Also the shared chunks' own counts (entries written, read back whole or a plane at a time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LruByteCache, fastestPixelKernels } from '@tilefarm/render';
import { SharedChunkFiles, defaultSharedChunksDir, readTileFromChunks } from '@tilefarm/zarr';

const ROUNDS = 12;
const WARM_ROUNDS = 2;
const prepared = Uint16Array.from({ length: 64 ** 3 }, (_, i) => (i * 7919) & 0xffff);
const handle = {
  shape: [2, 64, 1024, 1024],
  chunks: [1, 64, 64, 64],
  dtype: 'uint16',
  fillValue: 0,
  async getChunk(_coords: number[], planes?: { axis: number; from: number; to: number }) {
    const block = planes ? planes.from - (planes.from % 32) : 0;
    return { data: prepared.slice(), shape: [1, 64, 64, 64], stride: [64 ** 3, 64 * 64, 64, 1], ...(planes && { decodedPlanes: { from: block, to: block + 31 } }) };
  },
};
const image = { axes: ['c', 'z', 'y', 'x'], dtype: 'uint16', fillValue: 0 } as unknown as Parameters<typeof readTileFromChunks>[0];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** As the worker reads: stacks of planes, rows copied by its kernel. */
const reading = { stacks: true, copyRows: fastestPixelKernels().copyRows };
const newCache = () => new LruByteCache<string, unknown>({ maxBytes: 64 << 20, maxOfferBytes: 16 << 20 });

/** CPU per tile reading the level-0 plane's tiles (both channels) at each z of `zs` in turn. */
async function pass(shared: SharedChunkFiles | undefined, cache: LruByteCache<string, unknown>, prefix: string, zs: number[]): Promise<number> {
  const start = cpuMs();
  let tiles = 0;
  for (const z of zs) {
    for (let c = 0; c < 2; c++) {
      for (let ty = 0; ty < 4; ty++) {
        for (let tx = 0; tx < 4; tx++, tiles++) await readTileFromChunks(image, [handle as never], { level: 0, t: 0, c, z, x0: tx * 256, y0: ty * 256, width: 256, height: 256 }, cache, prefix, shared ? { shared, ...reading } : reading);
      }
    }
  }
  return (cpuMs() - start) / tiles;
}

async function main(): Promise<void> {
  // Where a worker keeps them (/dev/shm), in a directory of this run's own.
  const dir = mkdtempSync(`${defaultSharedChunksDir()}-bench-`);
  // 256 MB each: a round's entries (64 of 2 MB, with the next half) all fit, so nothing a round
  // reads back was overwritten by its own later writes (a worker's default is 128 MB).
  const open = () => SharedChunkFiles.open({ dir: join(dir, 'chunks'), maxBytes: 256 << 20, namespace: 'bench' });
  const first = open();
  const second = open();
  const rows: Record<string, number[]> = { 'decode, no sharing': [], 'decode and share': [], 'read back': [], 'read back, next half': [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const prefix = `round-${round}-${process.pid}-${Date.now()}`;
      const counted = round >= WARM_ROUNDS;
      const measure = async (row: string, ms: Promise<number>) => {
        const value = await ms;
        if (counted) rows[row]!.push(value);
      };
      await measure('decode, no sharing', pass(undefined, newCache(), `${prefix}-alone`, [8]));
      const secondCache = newCache();
      await measure('decode and share', pass(first, newCache(), prefix, [8]));
      await measure('read back', pass(second, secondCache, prefix, [9, 11, 13, 15]));
      await measure('read back, next half', pass(second, secondCache, prefix, [17, 19, 21, 23]));
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const alone = median(rows['decode, no sharing']!);
    console.log(`zarr shared chunks: CPU ms per 256² tile of one channel (16 planes of 16 chunks of 64³, one stack), median of ${ROUNDS - WARM_ROUNDS} rounds, node ${process.version}`);
    for (const [row, values] of Object.entries(rows)) {
      const m = median(values);
      console.log(`  ${row.padEnd(22)} ${m.toFixed(3)} ms (range ${Math.min(...values).toFixed(3)}-${Math.max(...values).toFixed(3)})${row === 'decode, no sharing' ? '' : `; ${(m - alone >= 0 ? '+' : '')}${(m - alone).toFixed(3)} ms against no sharing`}`);
    }
    console.log(`  entries: first worker ${JSON.stringify(first.stats())}, second ${JSON.stringify(second.stats())}`);
  } finally {
    first.close();
    second.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
