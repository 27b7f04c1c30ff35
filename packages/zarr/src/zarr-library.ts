import type { ChunkDecoder } from './chunk-decoder';
import type { ChunkMemory } from './chunk-memory';
import { MAX_CHUNK_BYTES, chunkBytes } from './ngff-image';
import { chunkReads, type ChunkReadOptions, type DecodedSpan, type WantedSpan, type ZarrReadable } from './object-store-readable';

/** A decoded chunk: C-order samples of `shape` (edge chunks come full size, padded with the fill value). */
export interface DecodedChunk {
  data: ArrayLike<number> & { byteLength: number; BYTES_PER_ELEMENT: number };
  shape: number[];
  /** Element strides (zarrita gives C or F order as the array declares). */
  stride: number[];
  /**
   * Read with `planes`: the planes along that axis whose samples were decoded, when more than
   * asked (the whole Blosc blocks holding them); undefined: only those asked.
   */
  decodedPlanes?: { from: number; to: number };
}

/** Planes of a chunk along one axis (z), both ends included, in the chunk's own indices. */
export interface ChunkPlanes {
  axis: number;
  from: number;
  to: number;
}

/** One Zarr array as the tile reader needs it. */
export interface ZarrArrayHandle {
  shape: number[];
  /** Read chunk shape (the inner chunk of a sharded array). */
  chunks: number[];
  dtype: string;
  fillValue: number | null;
  /**
   * The chunk at chunk-grid coordinates; a missing chunk decodes to the fill value. With `planes`,
   * only planes `from`..`to` of axis `axis` will be read from the result, and the samples outside
   * them may be left undefined (a decoder may skip what holds none of them). With `memory`, the
   * chunk is read and decoded into it, and the caller gives back what it is handed (else memory
   * of its own, for the collector).
   */
  getChunk(coords: number[], planes?: ChunkPlanes, memory?: ChunkMemory): Promise<DecodedChunk>;
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
  error(fields: Record<string, unknown>, message: string): void;
}

/** Without a logger: warnings and errors still reach stderr; the normal case stays quiet. */
let codecReport: CodecReport = {
  info() {},
  warn: (fields, message) => console.warn(`${message} ${JSON.stringify(fields)}`),
  error: (fields, message) => console.error(`${message} ${JSON.stringify(fields)}`),
};

/**
 * Sends the codec choices (one line per compressor, at the process's first chunk of it) to this
 * logger. zarrita's codec registry is per process, so the report is too.
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
    for (const decoder of OWN_DECODERS) useOwnDecoderFor(zarr.registry, decoder);
    return zarr;
  });
  return loading;
}

interface OwnDecoder {
  /** The compressor, as logs and errors name it. */
  compressor: string;
  /** zarrita's registry names for it (v3 codec, v2 numcodecs id). */
  names: string[];
  /** The library that decodes, and the Debian package that brings it (none: part of node). */
  library: string;
  debianPackage?: string;
  /** How much a decode may exceed the chunk's samples (Blosc: a checksum's few bytes). */
  slackBytes: number;
  open(): ChunkDecoder;
}

// Required inside open(), not imported above: koffi and each library load only in processes that
// meet a chunk of that compressor.
const OWN_DECODERS: OwnDecoder[] = [
  // 2.5-7x the speed of numcodecs' wasm build, which copies every chunk into wasm memory byte by byte (bench:zarr-codecs, docs/ome-zarr.md).
  { compressor: 'Blosc', names: ['blosc', 'numcodecs.blosc'], library: 'c-blosc', debianPackage: 'libblosc1', slackBytes: 1024, open: () => (require('./blosc-codec') as typeof import('./blosc-codec')).openCBlosc() },
  // zstd ~3x, lz4 3-5x numcodecs' wasm on 256² and 1024² uint16 chunks (npm run bench:zarr-codecs).
  { compressor: 'zstd', names: ['zstd', 'numcodecs.zstd'], library: 'libzstd', debianPackage: 'libzstd1', slackBytes: 0, open: () => (require('./zstd-codec') as typeof import('./zstd-codec')).openLibzstd() },
  { compressor: 'lz4', names: ['lz4', 'numcodecs.lz4'], library: 'liblz4', debianPackage: 'liblz4-1', slackBytes: 0, open: () => (require('./lz4-codec') as typeof import('./lz4-codec')).openLiblz4() },
  // Not for code generation (zarrita's own gzip and zlib codecs generate none) but for bounds and speed: deflate-codec.ts.
  { compressor: 'gzip', names: ['gzip', 'numcodecs.gzip'], library: 'node:zlib', slackBytes: 0, open: () => (require('./deflate-codec') as typeof import('./deflate-codec')).openNodeZlib('gzip') },
  { compressor: 'zlib', names: ['zlib', 'numcodecs.zlib'], library: 'node:zlib', slackBytes: 0, open: () => (require('./deflate-codec') as typeof import('./deflate-codec')).openNodeZlib('zlib') },
];

/**
 * Whether this process can run numcodecs' wasm glue, which builds functions from strings when it
 * loads: not when node was started with --disallow-code-generation-from-strings, as every tilefarm
 * app is (NODE_FLAGS in @tilefarm/config, given on the command line by the launcher, the image and
 * the test system). Read from the command line rather than probed with `new Function`, so that no
 * tilefarm source turns a string into code even to ask.
 */
function codeGenerationAllowed(): boolean {
  return !process.execArgv.includes('--disallow-code-generation-from-strings');
}

/**
 * Blosc, zstd and lz4 chunks are decoded by the reference C libraries through koffi instead of
 * zarrita's default, numcodecs' wasm build: faster, and no code generated from strings, which
 * numcodecs' glue needs and tilefarm's processes refuse. gzip and zlib chunks by node's zlib,
 * bounded, instead of zarrita's DecompressionStream. Chosen at the first chunk of each
 * compressor. Where the library cannot be loaded, numcodecs decodes, with one warning, in a process
 * that allows code generation (a script, a test); in one that does not, every chunk of that
 * compressor fails with the package to install (one error line when it is first met). Encoding
 * (never done by tilefarm) stays numcodecs'.
 */
function useOwnDecoderFor(registry: Zarrita['registry'], own: OwnDecoder): void {
  const numcodecs = registry.get(own.names[0]!);
  if (!numcodecs) return;
  let chosen: Promise<CodecEntry> | undefined;
  const entry = () => (chosen ??= chooseDecoder(own, numcodecs));
  for (const name of own.names) registry.set(name, entry);
}

async function chooseDecoder(own: OwnDecoder, numcodecs: () => Promise<CodecEntry>): Promise<CodecEntry> {
  let decoder: ChunkDecoder;
  try {
    decoder = own.open();
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    const install = `Debian: apt-get install -y ${own.debianPackage ?? 'nodejs'}`;
    if (codeGenerationAllowed()) {
      codecReport.warn({ chunks: own.compressor, codec: 'numcodecs', reason }, `${own.library} (${install}) could not be loaded: ${own.compressor} chunks are decoded by numcodecs (wasm), slower`);
      return numcodecs();
    }
    // What to do first: callers keep a chunk error's first 200 characters.
    const message = `${own.compressor} chunks cannot be decoded here: install ${own.debianPackage ?? 'nodejs'} (${own.library}; ${install}). It could not be loaded (${reason}), and numcodecs' wasm build, the fallback, needs code generation from strings, which this process refuses (--disallow-code-generation-from-strings)`;
    codecReport.error({ chunks: own.compressor, codec: null, reason }, message);
    throw new Error(message);
  }
  codecReport.info({ chunks: own.compressor, codec: own.library, implementation: decoder.description }, `${own.compressor} chunks are decoded by ${own.library}`);
  return {
    kind: 'bytes_to_bytes',
    fromConfig(config, meta) {
      let encoder: Promise<Codec> | undefined;
      // A chunk's header says how much it decodes to: never more than the chunk's own samples, so
      // a corrupt or hostile header cannot make a worker allocate up to the format's limit (Blosc
      // 2 GB, lz4 4 GB, zstd and deflate without bound).
      const maxBytes = (chunkBytes(meta.shape, String(meta.dataType)) ?? MAX_CHUNK_BYTES) + own.slackBytes;
      // A span of this codec's output is that span of the array's samples only when nothing else
      // transforms them (no filter, no transpose, no second compressor; bytes only sets endianness).
      const chain = (meta as { codecs?: { name: string }[] }).codecs;
      const spansAreSamples = chain !== undefined && chain.filter((c) => c.name !== 'bytes').length === 1;
      return {
        kind: 'bytes_to_bytes',
        decode: async (bytes: Uint8Array) => {
          const read = chunkReads.get(bytes);
          const memory = read?.memory;
          const wanted = spansAreSamples ? read?.wanted : undefined;
          try {
            const decoded = decoder.decode(bytes, maxBytes, memory && ((size) => memory.allocate(size)), wanted);
            if (wanted) wanted.decoded = decoder.decodedSpan?.(bytes, wanted);
            return decoded;
          } finally {
            // The compressed bytes are read for this decode alone (zarrita keeps no reference).
            memory?.recycle(bytes);
          }
        },
        async encode(bytes: Uint8Array) {
          encoder ??= numcodecs().then((entry) => entry.fromConfig(config, meta));
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

/**
 * The decoded bytes of planes `from`..`to` along `axis` of a chunk of shape `chunks` in C order, when
 * they are one run (every axis before `axis` one deep, as NGFF chunks t and c); else undefined. In
 * F order (a transpose codec) the span means nothing, but then no decoder is given it (spansAreSamples).
 */
function spanOf(chunks: number[], sampleBytes: number | undefined, planes: ChunkPlanes): WantedSpan | undefined {
  if (sampleBytes === undefined || chunks.some((n, i) => i < planes.axis && n !== 1)) return undefined;
  const plane = planeBytes(chunks, sampleBytes, planes.axis);
  return { start: planes.from * plane, end: (planes.to + 1) * plane };
}

function planeBytes(chunks: number[], sampleBytes: number, axis: number): number {
  return chunks.slice(axis + 1).reduce((a, b) => a * b, sampleBytes);
}

/** The whole planes inside a decoded span (spanOf's inverse, rounded inwards). */
function planesIn(chunks: number[], sampleBytes: number, axis: number, span: DecodedSpan): { from: number; to: number } {
  const plane = planeBytes(chunks, sampleBytes, axis);
  return { from: Math.ceil(span.start / plane), to: Math.floor(span.end / plane) - 1 };
}

/** zarrita (npm), with Blosc, zstd and lz4 by their C libraries, gzip and zlib by node's zlib (above), and sharding. */
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
    const sampleBytes = chunkBytes([1], String(array.dtype));
    return {
      shape: array.shape,
      chunks: array.chunks,
      dtype: String(array.dtype),
      fillValue: typeof fill === 'number' ? fill : null,
      async getChunk(coords, planes, memory) {
        let chunk: Awaited<ReturnType<typeof array.getChunk>>;
        let options: ChunkReadOptions | undefined;
        try {
          // zarrita hands these options to our store's get untouched (ObjectStoreReadable).
          if (planes || memory) options = { ...(planes && { wanted: spanOf(array.chunks, sampleBytes, planes) }), ...(memory && { memory }) };
          chunk = await array.getChunk(coords, options);
        } catch (error) {
          if (zarr.isZarritaError(error, 'CodecPipelineError')) throw new Error(`chunk ${coords.join('.')} of "${path}" is corrupt: ${rootMessage(error)}`, { cause: error });
          throw error;
        }
        // A corrupt compressed chunk can decode without an error to too few samples (Blosc to
        // none at all): refused here, never rendered as zeros.
        const expected = chunk.shape.reduce((a, b) => a * b, 1);
        if (chunk.data.length !== expected) {
          if (memory) memory.recycle(chunk.data as unknown as ArrayBufferView);
          throw new Error(`chunk ${coords.join('.')} of "${path}" is corrupt: it decodes to ${chunk.data.length} samples, not ${expected}`);
        }
        let data = chunk.data as DecodedChunk['data'] & ArrayBufferView;
        // A cache counts a chunk's byteLength: it must hold no more memory than that (give or take
        // a page). An uncompressed chunk is a view of what was read, which may be larger (a store's
        // body that is a slice of a bigger buffer).
        if ((memory ? memory.bytesBehind(data) : data.buffer.byteLength) > data.byteLength + 4096) {
          const Typed = data.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => typeof data;
          const into = memory ? memory.allocate(data.byteLength) : Buffer.allocUnsafeSlow(data.byteLength);
          const exact = new Typed(into.buffer as ArrayBuffer, into.byteOffset, expected);
          (exact as unknown as { set(a: ArrayLike<number>): void }).set(data);
          memory?.recycle(data);
          data = exact;
        }
        const decoded = options?.wanted?.decoded;
        const decodedPlanes = planes && decoded && sampleBytes !== undefined ? planesIn(array.chunks, sampleBytes, planes.axis, decoded) : undefined;
        return decodedPlanes ? { data, shape: chunk.shape, stride: chunk.stride, decodedPlanes } : { data, shape: chunk.shape, stride: chunk.stride };
      },
    };
  },
};
