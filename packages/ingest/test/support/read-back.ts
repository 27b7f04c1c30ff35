import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { levelGrid, levelSize, type DatasetManifest, type PixelArray } from '@tilefarm/contracts';
import { DatasetCatalog, allocPixels, readSourceTile } from '@tilefarm/datasets';
import { LocalObjectStore, type ObjectStore } from '@tilefarm/storage';

/** Shared fixtures live beside the repository: <clone>/../shared/fixtures (also in CI). */
export const FIXTURES = resolve(__dirname, '../../../../../shared/fixtures');

export interface TempCatalog {
  dir: string;
  store: ObjectStore;
  catalog: DatasetCatalog;
  cleanup(): void;
}

export function tempCatalog(): TempCatalog {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-ingest-'));
  const store = new LocalObjectStore(join(dir, 'store'));
  return { dir, store, catalog: new DatasetCatalog(store, 0), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reassembles a whole level of one channel plane from its stored source tiles. */
export async function readBackPlane(store: ObjectStore, m: DatasetManifest, level: number, c: number, z: number, t = 0): Promise<{ width: number; height: number; data: PixelArray }> {
  const { width, height } = levelSize(m, level);
  const { cols, rows } = levelGrid(m, level);
  const data = allocPixels(m.dtype, width * height);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const tile = await readSourceTile(store, m.id, m.version, { level, t, z, c, x, y });
      const x0 = x * m.tileSize;
      const y0 = y * m.tileSize;
      expect([tile.width, tile.height]).toEqual([Math.min(m.tileSize, width - x0), Math.min(m.tileSize, height - y0)]);
      for (let r = 0; r < tile.height; r++) data.set(tile.data.subarray(r * tile.width, (r + 1) * tile.width), (y0 + r) * width + x0);
    }
  }
  return { width, height, data };
}

/** Every-other-pixel subsampling, written independently of the code under test. */
export function everyOther(plane: { width: number; height: number; data: PixelArray }, times: number): PixelArray {
  let { width, height, data } = plane;
  for (let k = 0; k < times; k++) {
    const w = Math.ceil(width / 2);
    const h = Math.ceil(height / 2);
    const out = allocPixels('uint16', w * h) as PixelArray;
    const next = data instanceof Uint8Array ? new Uint8Array(w * h) : data instanceof Float32Array ? new Float32Array(w * h) : out;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) next[y * w + x] = data[2 * y * width + 2 * x]!;
    width = w;
    height = h;
    data = next;
  }
  return data;
}

export async function storedKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of store.list(prefix)) keys.push(k);
  return keys;
}

/** Index of the first differing sample, -1 if equal (jest's deep equality is slow on megapixel arrays). */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
