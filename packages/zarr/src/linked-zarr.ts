import { createHash } from 'node:crypto';
import { TilefarmError, type DatasetManifest, type LinkedZarrSource, type SourceTile, levelSize } from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import type { ChunkMemory } from './chunk-memory';
import { readTileFromChunks, type ChunkCache, type CopyRows } from './chunked-tile-reader';
import type { SharedChunks } from './shared-chunk-files';
import { describeNgffImage, ngffAttributesOf, type NgffImage, type NgffLevelArray } from './ngff-image';
import { ObjectStoreReadable } from './object-store-readable';
import type { ZarrArrayHandle, ZarrLibrary } from './zarr-library';

/** Where a Zarr lies: the object store holding it and the key prefix of its root ("" or ending in "/"). */
export interface ZarrPlace {
  store: ObjectStore;
  prefix: string;
}

/** Turns a manifest's `source.url` ("file:<path under INGEST_ROOT>" or "s3://bucket/prefix") into a place to read. */
export type ZarrPlaceResolver = (url: string) => ZarrPlace;

export interface OpenedZarr {
  zarrFormat: 2 | 3;
  image: NgffImage;
  arrays: ZarrArrayHandle[];
  /** sha256 of the metadata documents (group and every level), to notice a Zarr changed after registration. */
  fingerprint: string;
  readable: ObjectStoreReadable;
}

async function metadataFingerprint(readable: ObjectStoreReadable, zarrFormat: 2 | 3, paths: string[]): Promise<string> {
  const docs = zarrFormat === 3 ? ['/zarr.json', ...paths.map((p) => `/${p}/zarr.json`)] : ['/.zgroup', '/.zattrs', ...paths.map((p) => `/${p}/.zarray`)];
  const hash = createHash('sha256');
  for (const doc of docs) {
    const body = await readable.get(doc as `/${string}`);
    hash.update(`${doc}\n${body ? body.length : -1}\n`);
    if (body) hash.update(body);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Opens and checks an OME-Zarr image (any failure is a clear `source_unreadable`). */
export async function openZarrImage(place: ZarrPlace, library: ZarrLibrary, where: string, maxPixels: number): Promise<OpenedZarr> {
  const readable = new ObjectStoreReadable(place.store, place.prefix);
  let group;
  try {
    group = await library.openGroup(readable, '/');
  } catch (e) {
    if (e instanceof TilefarmError) throw e;
    throw new TilefarmError('source_unreadable', `${where} is not a Zarr group (no .zgroup or zarr.json): ${(e as Error).message.slice(0, 200)}`);
  }
  const attrs = ngffAttributesOf(group.attrs, where);
  const paths = attrs.multiscales[0]!.datasets.map((d) => d.path.replace(/^\/+|\/+$/g, ''));
  const arrays: ZarrArrayHandle[] = [];
  for (const path of paths) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]*$/.test(path) || path.split('/').includes('..')) throw new TilefarmError('source_unreadable', `${where}: level path "${path.slice(0, 50)}" is not a plain relative path`);
    try {
      arrays.push(await library.openArray(readable, path, group.zarrFormat));
    } catch (e) {
      throw new TilefarmError('source_unreadable', `${where}: level "${path}" is not a readable Zarr array: ${(e as Error).message.slice(0, 200)}`);
    }
  }
  const levelArrays: NgffLevelArray[] = arrays.map((a, i) => ({ path: paths[i]!, shape: a.shape, chunks: a.chunks, dtype: a.dtype, fillValue: a.fillValue }));
  const image = describeNgffImage(attrs, levelArrays, where, maxPixels);
  const fingerprint = await metadataFingerprint(readable, group.zarrFormat, paths);
  return { zarrFormat: group.zarrFormat, image, arrays, fingerprint, readable };
}

export interface LinkedZarrReaderOptions {
  resolve: ZarrPlaceResolver;
  library: ZarrLibrary;
  maxPixels: number;
  /** How long an opened Zarr is trusted before its metadata fingerprint is checked again. */
  recheckMs?: number;
  now?: () => number;
  /** Decoded chunks the worker processes of this machine hand each other. */
  shared?: SharedChunks;
  /** How chunks' rows are copied into tiles (ChunkReading.copyRows). */
  copyRows?: CopyRows;
  /** Tiles of deep chunks kept as stacks of planes (ChunkReading.stacks). */
  stacks?: boolean;
}

/**
 * Source tiles of linked datasets, read from the Zarr where it lies. An opened image is re-checked
 * (metadata fingerprint) every `recheckMs`: a Zarr whose metadata changed after registration
 * answers `source_unreadable` ("changed since registration"), never a tile read with new metadata
 * under the old manifest.
 */
export class LinkedZarrReader {
  private readonly opened = new Map<string, { at: number; zarr: Promise<OpenedZarr> }>();
  private readonly recheckMs: number;
  private readonly now: () => number;

  constructor(private readonly options: LinkedZarrReaderOptions) {
    this.recheckMs = options.recheckMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  private async open(manifest: DatasetManifest, source: LinkedZarrSource): Promise<OpenedZarr> {
    const key = `${manifest.id}/${manifest.version}`;
    const held = this.opened.get(key);
    if (held && this.now() - held.at < this.recheckMs) return held.zarr;
    const zarr = openZarrImage(this.options.resolve(source.url), this.options.library, source.url, this.options.maxPixels).then((z) => {
      if (z.fingerprint !== source.fingerprint) {
        throw new TilefarmError('source_unreadable', `${source.url} changed since it was registered as ${manifest.id} v${manifest.version} (metadata fingerprint differs); register it again`);
      }
      return z;
    });
    this.opened.set(key, { at: this.now(), zarr });
    zarr.catch(() => this.opened.delete(key));
    if (this.opened.size > 256) this.opened.delete(this.opened.keys().next().value as string);
    return zarr;
  }

  /**
   * Channel c of plane (z, t) at `level`, tile (x, y) of the manifest's grid, cut at the edge.
   * `memory`: only when this read is part of a render holding that memory's ticket (readTileFromChunks).
   * `shareDecodes`: ChunkReading.shareDecodes.
   */
  async readTile(manifest: DatasetManifest, position: { level: number; t: number; z: number; c: number; x: number; y: number }, cache: ChunkCache, memory?: ChunkMemory, shareDecodes = true): Promise<SourceTile> {
    const source = manifest.source;
    if (!source) throw new Error(`${manifest.id} is not a linked dataset`);
    const zarr = await this.open(manifest, source);
    const size = levelSize(manifest, position.level);
    const x0 = position.x * manifest.tileSize;
    const y0 = position.y * manifest.tileSize;
    if (x0 >= size.width || y0 >= size.height) throw new TilefarmError('out_of_range');
    const region = { level: position.level, t: position.t, c: position.c, z: position.z, x0, y0, width: Math.min(manifest.tileSize, size.width - x0), height: Math.min(manifest.tileSize, size.height - y0) };
    try {
      // The key names the dataset's version and when it was registered: a dataset deleted and
      // registered again under the same id and version is another image to the shared chunks.
      const prefix = `zarr:${manifest.id}/${manifest.version}@${manifest.createdAt}`;
      return await readTileFromChunks(zarr.image, zarr.arrays, region, cache, prefix, { memory, shared: this.options.shared, shareDecodes, copyRows: this.options.copyRows, stacks: this.options.stacks });
    } catch (e) {
      if (e instanceof TilefarmError) throw e;
      throw new TilefarmError('source_unreadable', `${source.url}: chunk of level ${position.level} unreadable: ${(e as Error).message.slice(0, 200)}`);
    }
  }
}
