import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { MAX_CHUNK_BYTES, ObjectStoreReadable, type ChunkMemory, type DecodedChunk, type ZarrLibrary } from '@tilefarm/zarr';
import type { ChunkDecoder } from '../src/chunk-decoder';

const METADATA = new Set(['.zarray', '.zattrs', '.zgroup', 'zarr.json', 'done']);

/** The chunk files under a fixture array's folder (sorted; metadata and .raw files left out). */
export function chunkFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((f) => f.isFile() && !METADATA.has(f.name) && !f.name.endsWith('.raw'))
    .map((f) => join(f.parentPath, f.name))
    .sort();
}

const BYTES: Record<string, number> = { uint8: 1, uint16: 2, int16: 2, float32: 4 };

/** A 3-d fixture array (blosc-variants.py, codec-variants.py): where it lies and how it was written. */
export interface FixtureArray {
  kind: 'v2' | 'v3' | 'v3-sharded';
  name: string;
  dtype: string;
  shape: number[];
  chunks: number[];
}

/** Every chunk of a 3-d fixture array under `dir` read through `library` (into `memory`, if given), placed into one C-order byte array. */
export async function readWhole(library: ZarrLibrary, dir: string, v: FixtureArray, memory?: ChunkMemory): Promise<Buffer> {
  const store = new ObjectStoreReadable(new LocalObjectStore(join(dir, v.kind)), `${v.name}/`);
  const array = await library.openArray(store, '', v.kind === 'v2' ? 2 : 3);
  expect({ shape: array.shape, chunks: array.chunks, dtype: array.dtype }).toEqual({ shape: v.shape, chunks: v.chunks, dtype: v.dtype });
  const [Z, Y, X] = v.shape as [number, number, number];
  const [cz, cy, cx] = v.chunks as [number, number, number];
  const size = BYTES[v.dtype]!;
  const out = Buffer.alloc(Z * Y * X * size);
  for (let gz = 0; gz * cz < Z; gz++) {
    for (let gy = 0; gy * cy < Y; gy++) {
      for (let gx = 0; gx * cx < X; gx++) {
        const chunk: DecodedChunk = await array.getChunk([gz, gy, gx], undefined, memory);
        const data = chunk.data as unknown as ArrayBufferView;
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        const [sz, sy, sx] = chunk.stride as [number, number, number];
        expect(sx).toBe(1);
        const width = Math.min(cx, X - gx * cx);
        for (let z = 0; z < cz && gz * cz + z < Z; z++) {
          for (let y = 0; y < cy && gy * cy + y < Y; y++) {
            const from = (z * sz + y * sy) * size;
            const to = (((gz * cz + z) * Y + gy * cy + y) * X + gx * cx) * size;
            out.set(bytes.subarray(from, from + width * size), to);
          }
        }
      }
    }
  }
  return out;
}

/** A codec of numcodecs (zarrita's default, its wasm build): the independent decoder ours are compared with. */
export interface NumcodecsCodec {
  decode(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

export async function numcodecsCodec(name: 'blosc' | 'zstd' | 'lz4', config: object): Promise<NumcodecsCodec> {
  // numcodecs ships ES modules only, with types behind "exports"; jest maps the path to its file.
  const specifier = `numcodecs/${name}`;
  const { default: Codec } = (await import(specifier)) as { default: { fromConfig(c: object): NumcodecsCodec } };
  return Codec.fromConfig(config);
}

/**
 * Every chunk file under `dirs` decoded by `ours` and by numcodecs: byte for byte the same (the first
 * difference throws, naming the file under `root`); `each` also sees every chunk and what it decoded
 * to. Returns how many chunks were compared.
 */
export async function decodeLikeNumcodecs(ours: ChunkDecoder, numcodecs: NumcodecsCodec, dirs: string[], root: string, each: (decoded: Uint8Array, chunk: Uint8Array) => void): Promise<number> {
  let chunks = 0;
  for (const dir of dirs) {
    for (const file of chunkFiles(dir)) {
      const bytes = new Uint8Array(readFileSync(file));
      const decoded = ours.decode(bytes, MAX_CHUNK_BYTES);
      if (Buffer.compare(decoded, await numcodecs.decode(bytes)) !== 0) throw new Error(`${relative(root, file)}: ${ours.description} and numcodecs differ`);
      each(decoded, bytes);
      chunks++;
    }
  }
  return chunks;
}
