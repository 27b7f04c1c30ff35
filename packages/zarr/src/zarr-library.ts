import { chunkMemory, recycleBuffer } from './chunk-memory';
import { MAX_CHUNK_BYTES, chunkBytes } from './ngff-image';
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

/** Where the Zarr reader says which codec implementations it uses (pino's logger fits). */
export interface CodecReport {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Without a logger: the fallback's warning still reaches stderr; the normal case stays quiet. */
let codecReport: CodecReport = {
  info() {},
  warn: (fields, message) => console.warn(`${message} ${JSON.stringify(fields)}`),
};

/**
 * Sends the codec choice (one line, at the process's first Blosc chunk) to this logger. zarrita's
 * codec registry is per process, so the report is too.
 */
export function reportZarrCodecsTo(report: CodecReport): void {
  codecReport = report;
}

type Zarrita = typeof import('zarrita', { with: { 'resolution-mode': 'import' } });
type CodecEntry = Awaited<ReturnType<NonNullable<ReturnType<Zarrita['registry']['get']>>>>;
type Codec = ReturnType<CodecEntry['fromConfig']>;
let loading: Promise<Zarrita> | undefined;

/** zarrita is ESM-only: loaded with a real dynamic import, once, by the processes that read Zarr. */
function zarrita(): Promise<Zarrita> {
  loading ??= import('zarrita').then((zarr) => {
    useCBloscFor(zarr.registry);
    return zarr;
  });
  return loading;
}

/**
 * Blosc chunks (v2 "numcodecs.blosc" and v3 "blosc") decoded by c-blosc through koffi: 2.5–7× the
 * speed of zarrita's default, numcodecs' wasm build, which copies every chunk into wasm memory
 * byte by byte (README, bench:zarr). Chosen at the first Blosc chunk; without libblosc (or
 * koffi's binary) numcodecs decodes as before, with one warning. Encoding (never done by tilefarm)
 * stays numcodecs'.
 */
function useCBloscFor(registry: Zarrita['registry']): void {
  const numcodecsBlosc = registry.get('blosc');
  if (!numcodecsBlosc) return;
  let chosen: Promise<CodecEntry> | undefined;
  const entry = () => (chosen ??= chooseBlosc(numcodecsBlosc));
  registry.set('blosc', entry).set('numcodecs.blosc', entry);
}

async function chooseBlosc(numcodecsBlosc: () => Promise<CodecEntry>): Promise<CodecEntry> {
  let decoder: import('./blosc-codec').BloscChunkDecoder;
  try {
    // Required here, not imported above: koffi and libblosc load only in processes that meet a Blosc chunk.
    const { openCBlosc } = require('./blosc-codec') as typeof import('./blosc-codec');
    decoder = openCBlosc();
  } catch (error) {
    codecReport.warn({ codec: 'numcodecs', reason: (error as Error).message.split('\n')[0] }, 'c-blosc (Debian: apt-get install -y libblosc1) could not be loaded: Blosc chunks are decoded by numcodecs (wasm), 2.5-7x slower');
    return numcodecsBlosc();
  }
  codecReport.info({ codec: 'c-blosc', implementation: decoder.description }, 'Blosc chunks are decoded by c-blosc');
  return {
    kind: 'bytes_to_bytes',
    fromConfig(config, meta) {
      let encoder: Promise<Codec> | undefined;
      // A chunk's Blosc header says how much it decodes to: never more than the chunk's own samples
      // (plus a checksum's few bytes), so a corrupt or hostile header cannot make a worker allocate
      // up to Blosc's 2 GB limit.
      const maxBytes = (chunkBytes(meta.shape, String(meta.dataType)) ?? MAX_CHUNK_BYTES) + 1024;
      return {
        kind: 'bytes_to_bytes',
        decode: async (bytes: Uint8Array) => {
          const memory = chunkMemory();
          const decoded = decoder.decode(bytes, maxBytes, memory && ((size) => memory.allocate(size)));
          // The compressed bytes are read for this decode alone (zarrita keeps no reference).
          recycleBuffer(memory, bytes);
          return decoded;
        },
        async encode(bytes: Uint8Array) {
          encoder ??= numcodecsBlosc().then((numcodecs) => numcodecs.fromConfig(config, meta));
          return (await encoder).encode(bytes);
        },
      };
    },
  };
}

/** The innermost cause's message: zarrita wraps a codec's error once per pipeline (twice in a shard). */
function rootMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function absolute(path: string): `/${string}` {
  const p = path.replace(/^\/+|\/+$/g, '');
  return p === '' ? '/' : `/${p}`;
}

/** zarrita (npm), with its codecs (zlib, gzip, zstd, lz4 from numcodecs), Blosc by c-blosc (above), and sharding. */
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
        let chunk: Awaited<ReturnType<typeof array.getChunk>>;
        try {
          chunk = await array.getChunk(coords);
        } catch (error) {
          if (zarr.isZarritaError(error, 'CodecPipelineError')) throw new Error(`chunk ${coords.join('.')} of "${path}" is corrupt: ${rootMessage(error)}`, { cause: error });
          throw error;
        }
        // A corrupt compressed chunk can decode without an error to too few samples (Blosc to
        // none at all): refused here, never rendered as zeros.
        const expected = chunk.shape.reduce((a, b) => a * b, 1);
        if (chunk.data.length !== expected) throw new Error(`chunk ${coords.join('.')} of "${path}" is corrupt: it decodes to ${chunk.data.length} samples, not ${expected}`);
        let data = chunk.data as DecodedChunk['data'] & ArrayBufferView;
        // A cache counts a chunk's byteLength: it must hold no more memory than that. An
        // uncompressed chunk is a view of the read, whose buffer may be larger (readBuffer).
        if (data.byteLength !== data.buffer.byteLength) {
          const memory = chunkMemory();
          const Typed = data.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => typeof data;
          const exact = new Typed((memory ? memory.allocate(data.byteLength) : Buffer.allocUnsafeSlow(data.byteLength)).buffer as ArrayBuffer, 0, expected);
          (exact as unknown as { set(a: ArrayLike<number>): void }).set(data);
          recycleBuffer(memory, data);
          data = exact;
        }
        return { data, shape: chunk.shape, stride: chunk.stride };
      },
    };
  },
};
