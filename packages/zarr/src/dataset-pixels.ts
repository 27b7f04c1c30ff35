import { resolve, sep } from 'node:path';
import { TilefarmError, type DatasetManifest, type SourceTile } from '@tilefarm/contracts';
import { readSourceTile, type SourceTilePosition } from '@tilefarm/datasets';
import { LocalObjectStore, openObjectStore, type ObjectStore, type S3ObjectStoreOptions } from '@tilefarm/storage';
import type { ChunkMemory } from './chunk-memory';
import type { ChunkCache, CopyRows } from './chunked-tile-reader';
import type { SharedChunks } from './shared-chunk-files';
import { LinkedZarrReader, type ZarrPlace, type ZarrPlaceResolver } from './linked-zarr';
import { zarritaLibrary } from './zarr-library';

export interface ZarrPlaceOptions {
  /** Directory "file:" sources lie in; unset: only s3:// sources. */
  ingestRoot?: string;
  /** Connection for s3:// sources (bucket and prefix come from the URL). */
  s3: Omit<S3ObjectStoreOptions, 'bucket' | 'prefix'>;
}

/** Parses a source URL: "s3://bucket/prefix" or a path under the ingest root ("file:" or plain). */
export function parseZarrUrl(url: string): { kind: 's3'; bucket: string; prefix: string } | { kind: 'file'; path: string } {
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])\/(.+?)\/*$/.exec(url);
  if (s3) return { kind: 's3', bucket: s3[1]!, prefix: `${s3[2]!}/` };
  if (url.startsWith('s3://')) throw new TilefarmError('bad_request', `source "${url.slice(0, 100)}": not an s3://bucket/prefix URL`);
  const path = url.replace(/^file:/, '').replace(/\/+$/, '');
  if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.' || s === '')) throw new TilefarmError('bad_request', `source "${url.slice(0, 100)}": give a relative path under INGEST_ROOT or s3://bucket/prefix`);
  return { kind: 'file', path };
}

/**
 * Zarr chunks on local disk up to this size are read synchronously (objects in general: up to
 * 512 KB). A chunk is decoded on the same thread as soon as it is read, which blocks it longer than
 * the read (a 1024² uint16 chunk: 1.5 MB read, 0.7 ms decoded); through the thread pool, the read
 * of the chunk every tile of a new z waits for queued behind the renders' encodes, and its memory
 * could not come from the caller (readFile allocates its own). bench:zarr, 1024² chunks: 0.57-0.61
 * of the copied source's tiles/s with 512 KB, 0.73 with this.
 */
export const ZARR_SYNC_READ_MAX_BYTES = 4 * 1024 * 1024;

/** Opens the store a linked Zarr lies in: S3 clients are shared per bucket. */
export function zarrPlaceResolver(options: ZarrPlaceOptions): ZarrPlaceResolver {
  const buckets = new Map<string, ObjectStore>();
  const root = options.ingestRoot ? new LocalObjectStore(resolve(options.ingestRoot), { syncReadMaxBytes: ZARR_SYNC_READ_MAX_BYTES }) : undefined;
  return (url: string): ZarrPlace => {
    const parsed = parseZarrUrl(url);
    if (parsed.kind === 'file') {
      if (!root) throw new TilefarmError('bad_request', 'this server has no INGEST_ROOT: only s3:// Zarr sources can be linked');
      if (!resolve(options.ingestRoot!, parsed.path).startsWith(resolve(options.ingestRoot!) + sep)) throw new TilefarmError('bad_request', 'the source must lie under INGEST_ROOT');
      return { store: root, prefix: `${parsed.path}/` };
    }
    let store = buckets.get(parsed.bucket);
    if (!store) {
      store = openObjectStore({ kind: 's3', ...options.s3, bucket: parsed.bucket });
      buckets.set(parsed.bucket, store);
    }
    return { store, prefix: parsed.prefix };
  };
}

/**
 * The pixels of any published dataset, one source tile at a time: stored source tiles for
 * ingested datasets, chunks of the Zarr where it lies for linked ones. The worker's renders and
 * the API's /zarr/ view both read through this.
 */
export class DatasetPixels {
  readonly linked: LinkedZarrReader;

  constructor(
    private readonly store: ObjectStore,
    places: ZarrPlaceResolver,
    maxPixels: number,
    reading: { shared?: SharedChunks; copyRows?: CopyRows; stacks?: boolean } = {},
  ) {
    this.linked = new LinkedZarrReader({ resolve: places, library: zarritaLibrary, maxPixels, ...reading });
  }

  /**
   * `memory`: the render this read is part of holds its ticket (the worker's renders; see
   * readTileFromChunks). `shareDecodes`: ChunkReading.shareDecodes.
   */
  read(manifest: DatasetManifest, position: SourceTilePosition, chunks: ChunkCache, memory?: ChunkMemory, shareDecodes = true): Promise<SourceTile> {
    if (manifest.source) return this.linked.readTile(manifest, position, chunks, memory, shareDecodes);
    return readSourceTile(this.store, manifest.id, manifest.version, position);
  }
}
