import type { ZarrReadable } from './object-store-readable';

/** A decoded chunk: C-order samples of `shape` (edge chunks come full size, padded with the fill value). */
export interface DecodedChunk {
  data: ArrayLike<number> & { byteLength: number; BYTES_PER_ELEMENT: number };
  shape: number[];
  /** Element strides (zarrita gives C or F order as the array declares). */
  stride: number[];
}

/** One Zarr array as the tile reader needs it. */
export interface ZarrArrayHandle {
  shape: number[];
  /** Read chunk shape (the inner chunk of a sharded array). */
  chunks: number[];
  dtype: string;
  fillValue: number | null;
  /** The chunk at chunk-grid coordinates; a missing chunk decodes to the fill value. */
  getChunk(coords: number[]): Promise<DecodedChunk>;
}

export interface ZarrGroupHandle {
  zarrFormat: 2 | 3;
  attrs: Record<string, unknown>;
}

/** The Zarr reader's role: open groups and arrays of a hierarchy (v2 or v3, sharded or not). */
export interface ZarrLibrary {
  openGroup(store: ZarrReadable, path: string): Promise<ZarrGroupHandle>;
  openArray(store: ZarrReadable, path: string, zarrFormat: 2 | 3): Promise<ZarrArrayHandle>;
}

type Zarrita = typeof import('zarrita', { with: { 'resolution-mode': 'import' } });
let loading: Promise<Zarrita> | undefined;

/** zarrita is ESM-only: loaded with a real dynamic import, once, by the processes that read Zarr. */
function zarrita(): Promise<Zarrita> {
  loading ??= import('zarrita');
  return loading;
}

function absolute(path: string): `/${string}` {
  const p = path.replace(/^\/+|\/+$/g, '');
  return p === '' ? '/' : `/${p}`;
}

/** zarrita (npm), with its numcodecs codecs (blosc with lz4/zstd, zlib, gzip, zstd, lz4) and sharding. */
export const zarritaLibrary: ZarrLibrary = {
  async openGroup(store, path) {
    const zarr = await zarrita();
    const location = zarr.root(store).resolve(absolute(path));
    try {
      const group = await zarr.open.v3(location, { kind: 'group' });
      return { zarrFormat: 3, attrs: group.attrs as Record<string, unknown> };
    } catch (v3Error) {
      try {
        const group = await zarr.open.v2(location, { kind: 'group' });
        return { zarrFormat: 2, attrs: group.attrs as Record<string, unknown> };
      } catch {
        throw v3Error;
      }
    }
  },

  async openArray(store, path, zarrFormat) {
    const zarr = await zarrita();
    const location = zarr.root(store).resolve(absolute(path));
    const array = zarrFormat === 3 ? await zarr.open.v3(location, { kind: 'array' }) : await zarr.open.v2(location, { kind: 'array' });
    const fill = array.fillValue;
    return {
      shape: array.shape,
      chunks: array.chunks,
      dtype: String(array.dtype),
      fillValue: typeof fill === 'number' ? fill : null,
      async getChunk(coords) {
        const chunk = await array.getChunk(coords);
        // A corrupt compressed chunk can decode without an error to too few samples (Blosc to
        // none at all): refused here, never rendered as zeros.
        const expected = chunk.shape.reduce((a, b) => a * b, 1);
        if (chunk.data.length !== expected) throw new Error(`chunk ${coords.join('.')} of "${path}" is corrupt: it decodes to ${chunk.data.length} samples, not ${expected}`);
        return { data: chunk.data as DecodedChunk['data'], shape: chunk.shape, stride: chunk.stride };
      },
    };
  },
};
