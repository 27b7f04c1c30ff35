import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE_SCRIPTS = join(__dirname, '..', 'fixtures', 'zarr');

/** Runs a fixture script once per version of it, into a cache dir (tests share it). */
function generatedBy(script: string, name: string): string {
  const path = join(FIXTURE_SCRIPTS, script);
  const hash = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `tilefarm-${name}-${hash}`);
  if (!existsSync(join(dir, 'done'))) {
    const building = `${dir}.${process.pid}`;
    rmSync(building, { recursive: true, force: true });
    mkdirSync(building, { recursive: true });
    execFileSync('/usr/bin/python3', [path, building], { stdio: 'pipe' });
    execFileSync('touch', [join(building, 'done')]);
    try {
      renameSync(building, dir);
    } catch {
      rmSync(building, { recursive: true, force: true }); // another test built it meanwhile
    }
  }
  return dir;
}

/**
 * The OME-Zarr fixtures, written by test/fixtures/zarr/generate.py with Debian's python3-zarr
 * (independent of our code and of zarrita). Generated once per script version into a cache dir.
 */
export function zarrFixtures(): { dir: string; ngff04: string; ngff05: string; numeric: Record<NumericDtype, string> } {
  const dir = generatedBy('generate.py', 'zarr-fixtures');
  const numeric = Object.fromEntries(NUMERIC_DTYPES.map((d) => [d, join(dir, `numeric-${d}.zarr`)])) as Record<NumericDtype, string>;
  return { dir, ngff04: join(dir, 'cells-ngff04.zarr'), ngff05: join(dir, 'cells-ngff05.zarr'), numeric };
}

/** One array of blosc-variants.py: where it lies (`${dir}/${kind}/${name}`) and how it was written. */
export interface BloscVariant {
  kind: 'v2' | 'v3' | 'v3-sharded';
  name: string;
  dtype: 'uint8' | 'uint16' | 'int16' | 'float32';
  shape: number[];
  chunks: number[];
  cname: string;
  clevel: number;
  shuffle: 'noshuffle' | 'shuffle' | 'bitshuffle';
  blocksize: number;
}

/**
 * Small Zarr arrays in every Blosc variant (inner codec × shuffle × sample type, v2 by Python's zarr,
 * v3 and sharded v3 chunks by numcodecs), each with its samples as raw bytes beside it
 * (test/fixtures/zarr/blosc-variants.py).
 */
export function bloscVariantFixtures(): { dir: string; variants: BloscVariant[] } {
  const dir = generatedBy('blosc-variants.py', 'blosc-variants');
  return { dir, variants: JSON.parse(readFileSync(join(dir, 'variants.json'), 'utf8')) as BloscVariant[] };
}

/** One array of codec-variants.py: where it lies (`${dir}/${kind}/${name}`) and how it was written. */
export interface CodecVariant {
  kind: 'v2' | 'v3';
  name: string;
  codec: 'zstd' | 'lz4' | 'gzip' | 'zlib';
  dtype: 'uint8' | 'uint16' | 'float32';
  shape: number[];
  chunks: number[];
}

/**
 * Small Zarr arrays compressed with zstd, lz4 (numcodecs' format), gzip and zlib, v2 by Python's
 * zarr and v3 chunks by numcodecs, each with its samples as raw bytes beside it
 * (test/fixtures/zarr/codec-variants.py).
 */
export function codecVariantFixtures(): { dir: string; variants: CodecVariant[] } {
  const dir = generatedBy('codec-variants.py', 'codec-variants');
  return { dir, variants: JSON.parse(readFileSync(join(dir, 'variants.json'), 'utf8')) as CodecVariant[] };
}

/** The fixtures' known value of every sample (see generate.py); reduced level k samples (y·2^k, x·2^k). */
export function fixtureValue(t: number, c: number, z: number, y: number, x: number): number {
  return 100 + 3000 * c + 500 * z + 40 * t + ((7 * x + 13 * y) % 251) + 20 * ((Math.floor(x / 37) + Math.floor(y / 29)) % 2);
}

/** Regions written as the fill value 0 with their chunk left out (see ZERO_04 / ZERO_05 in generate.py). */
export function isFixtureFill(which: '04' | '05', level: number, t: number, c: number, z: number, y: number, x: number): boolean {
  if (level !== 0) return false;
  if (which === '04') return c === 2 && z >= 4 && z < 6 && y < 200 && x < 300;
  return t === 1 && c === 1 && z < 2 && y < 128 && x < 160;
}

/** Samples of a 256² tile at (level, t, c, z, tx, ty) of fixture `which` that differ from the known values. */
export function wrongFixtureSamples(which: '04' | '05', tile: { width: number; height: number; data: ArrayLike<number> }, level: number, t: number, c: number, z: number, tx: number, ty: number): number {
  let wrong = 0;
  for (let y = 0; y < tile.height; y++) {
    for (let x = 0; x < tile.width; x++) {
      const gy = (ty * 256 + y) * 2 ** level;
      const gx = (tx * 256 + x) * 2 ** level;
      const expected = isFixtureFill(which, level, t, c, z, gy, gx) ? 0 : fixtureValue(t, c, z, gy, gx);
      if (tile.data[y * tile.width + x] !== expected) wrong++;
    }
  }
  return wrong;
}

export const NUMERIC_DTYPES = ['int16', 'uint32', 'float32'] as const;
export type NumericDtype = (typeof NUMERIC_DTYPES)[number];

/** numeric-{dtype}.zarr's known samples (generate.py numeric_value): c=2, z=2, 300 × 500, 2 levels (2× subsampled). */
export function numericFixtureValue(dtype: NumericDtype, c: number, z: number, y: number, x: number): number {
  const base = ((7 * x + 13 * y) % 1000) + 250 * z + 1000 * c;
  if (dtype === 'int16') return base - 1500;
  if (dtype === 'uint32') return base * 1000 + 70000;
  return base / 8 - 100;
}
