import { DatasetManifest, TilefarmError, levelGrid, levelSize, type DatasetStats, type PlaneStats } from '@tilefarm/contracts';
import { WrittenBytes, publishWithinQuota, startIngestQuota, type DatasetCatalog, type IngestQuota, type QuotaReservations } from '@tilefarm/datasets';
import { readTileFromChunks, type ChunkCache } from './chunked-tile-reader';
import { chunkSlabs, levelStatistics } from './level-statistics';
import { openZarrImage, type ZarrPlace } from './linked-zarr';
import type { NgffImage } from './ngff-image';
import type { DecodedChunk, ZarrLibrary } from './zarr-library';

/** Statistics come from the coarsest level with at least this many pixels per plane (docs/ome-zarr.md, "Statistics"). */
export const STATS_MIN_PIXELS = 1_000_000;

export interface LinkZarrOptions {
  /** "file:<path under INGEST_ROOT>" or "s3://bucket/prefix": kept in the manifest. */
  url: string;
  place: ZarrPlace;
  library: ZarrLibrary;
  id: string;
  name?: string;
  tenant?: string;
  catalog: DatasetCatalog;
  maxPixels: number;
  /** Planes (channel × z × t) whose statistics are done, of `total`; awaited (a watcher may stop the work). */
  onProgress?(done: number, total: number): Promise<void> | void;
  /** Copy instead of link: write tilefarm's own source tiles from the Zarr's levels (mode "copy"). */
  copy?: boolean;
  /** Per-tenant storage quota in bytes written to storage (a copy's tiles count; a link writes none); undefined: none. */
  tenantQuotaBytes?: number | undefined;
  /** The tenant quota's reservations shared with every other publisher (Redis). */
  quotaReservations?: QuotaReservations | undefined;
  /** Bytes of decoded chunks kept while reading (a 64³ chunk serves 64 planes). */
  chunkCacheBytes?: number;
  /** The id's shared version counter (Redis, as queued and CLI ingests use); without it, last version + 1. */
  versions?: { reserveVersion(id: string, floor: number): Promise<number> };
  /** Stops the work between planes/tiles (the CLI's Ctrl-C); what a copy wrote is removed. */
  signal?: AbortSignal;
}

/** The level statistics are computed from: the coarsest with ≥ STATS_MIN_PIXELS per plane, else the finest. */
export function statisticsLevel(image: Pick<NgffImage, 'levels' | 'axes'>): number {
  const iy = image.axes.indexOf('y');
  const ix = image.axes.indexOf('x');
  for (let k = image.levels.length - 1; k >= 0; k--) {
    const s = image.levels[k]!.shape;
    if (s[iy]! * s[ix]! >= STATS_MIN_PIXELS) return k;
  }
  return 0;
}

/** Each level's chunk extent in z, y and x, for the manifest (1 along an axis the image lacks). */
function chunkExtents(image: Pick<NgffImage, 'levels' | 'axes'>): { z: number; y: number; x: number }[] {
  const along = (chunks: number[], axis: 'z' | 'y' | 'x') => {
    const i = image.axes.indexOf(axis);
    return i < 0 ? 1 : chunks[i]!;
  };
  return image.levels.map((l) => ({ z: along(l.chunks, 'z'), y: along(l.chunks, 'y'), x: along(l.chunks, 'x') }));
}

/** A FIFO of decoded chunks bounded by bytes: planes are read in order, so recency is enough. */
function boundedChunks(maxBytes: number): ChunkCache {
  const held = new Map<string, Promise<DecodedChunk>>();
  const sizes = new Map<string, number>();
  let bytes = 0;
  return {
    getOrLoad(key, load) {
      const hit = held.get(key);
      if (hit) return hit;
      const p = load().then((chunk) => {
        sizes.set(key, chunk.data.byteLength);
        bytes += chunk.data.byteLength;
        for (const old of held.keys()) {
          if (bytes <= maxBytes || old === key) break;
          bytes -= sizes.get(old) ?? 0;
          held.delete(old);
          sizes.delete(old);
        }
        return chunk;
      });
      p.catch(() => held.delete(key));
      held.set(key, p);
      return p;
    },
  };
}

/**
 * Registers an OME-Zarr as a dataset without copying a pixel: opens and checks its metadata,
 * computes per-plane statistics from one level (statisticsLevel), and publishes a manifest whose
 * `source` points at the Zarr with a fingerprint of its metadata.
 */
export async function linkZarr(opts: LinkZarrOptions): Promise<DatasetManifest> {
  const stopped = () => {
    if (opts.signal?.aborted) throw new TilefarmError('conflict', `registration of ${opts.id} was stopped`);
  };
  const opened = await openZarrImage(opts.place, opts.library, opts.url, opts.maxPixels);
  const { image } = opened;
  const level = statisticsLevel(image);
  const cache = boundedChunks(opts.chunkCacheBytes ?? 64 << 20);
  const planeCount = image.sizeT * image.sizeZ * image.sizeC;
  const grid = { width: image.width, height: image.height, tileSize: 256 as const };
  let tilesPerPlane = 0;
  for (let k = 0; k < image.levels.length; k++) {
    const g = levelGrid(grid, k);
    tilesPerPlane += g.cols * g.rows;
  }
  const total = planeCount + (opts.copy ? planeCount * tilesPerPlane : 0);
  let done = 0;
  let planes: PlaneStats[];
  try {
    planes = await levelStatistics(image, opened.arrays[level]!, async (n) => {
      done += n;
      await opts.onProgress?.(done, total);
      stopped();
    });
  } catch (e) {
    if (e instanceof TilefarmError) throw e;
    throw new TilefarmError('source_unreadable', `${opts.url}: level ${level} could not be read: ${(e as Error).message.slice(0, 200)}`);
  }
  const channels = image.channels.map((ch, c) => {
    // A window other than the type's full range came from the omero block (float32's "full range" is
    // the placeholder [0, 1]: float sources, int16 and uint32 among them, need statistics instead).
    const fullHi = image.dtype === 'uint8' ? 255 : image.dtype === 'uint16' ? 65535 : 1;
    if (ch.window[1] > ch.window[0] && !(ch.window[0] === 0 && ch.window[1] === fullHi)) return ch;
    // No omero window: the ingest's default (0.1 % / 99.9 % over the channel's planes).
    const mine = planes.filter((p) => p.c === c);
    const lo = Math.min(...mine.map((p) => p.percentiles['0.001'] ?? p.min));
    let hi = Math.max(...mine.map((p) => p.percentiles['0.999'] ?? p.max));
    if (!(hi > lo)) hi = lo + (image.dtype === 'float32' ? 1e-6 : 1);
    return { ...ch, window: [lo, hi] as [number, number] };
  });
  // An id belongs to its first owner for good (as for file ingests; callers hold the id's lock).
  const tenant = opts.tenant ?? 'public';
  const owner = await opts.catalog.owner(opts.id);
  if (owner !== undefined && owner !== tenant) throw new TilefarmError('conflict', `dataset id "${opts.id}" is not available: it belongs to another owner`);
  // A link stores no source tile, so only a copy meets the tenant's quota (bytes written).
  const quota = opts.copy ? await startIngestQuota(opts.catalog, tenant, opts.id, opts.tenantQuotaBytes) : undefined;
  const floor = await opts.catalog.lastVersion(opts.id);
  const version = opts.versions ? await opts.versions.reserveVersion(opts.id, floor) : floor + 1;
  try {
    return await publishVersion(opts, opened, version, channels, planes, cache, grid, done, total, stopped, quota);
  } catch (e) {
    // Nothing of a failed or stopped registration stays: a copy's tiles are under this unpublished version.
    if (opts.copy) await opts.catalog.deleteVersion(opts.id, version).catch(() => undefined);
    throw e;
  }
}

async function publishVersion(
  opts: LinkZarrOptions,
  opened: Awaited<ReturnType<typeof openZarrImage>>,
  version: number,
  channels: DatasetManifest['channels'],
  planes: PlaneStats[],
  cache: ChunkCache,
  grid: { width: number; height: number; tileSize: 256 },
  done: number,
  total: number,
  stopped: () => void,
  quota: IngestQuota | undefined,
): Promise<DatasetManifest> {
  const { image } = opened;
  const written = new WrittenBytes(quota);
  if (opts.copy) {
    // Level by level, a layer of chunks at a time (a slab: 64 planes of 64³ chunks, one of 2-d
    // chunks), every plane of the slab written tile by tile: a tile's chunks are read once for all
    // the planes they hold and stay in the FIFO for them. Plane by plane, a 64³ chunk was decoded
    // again for each of its 64 planes (its layer under a 1024² plane is 128 MB, twice the FIFO).
    for (let k = 0; k < image.levels.length; k++) {
      const size = levelSize(grid, k);
      const g = levelGrid(grid, k);
      for (const slab of chunkSlabs(image, opened.arrays[k]!)) {
        for (let y = 0; y < g.rows; y++) {
          for (let x = 0; x < g.cols; x++) {
            const x0 = x * 256;
            const y0 = y * 256;
            for (const { t, c, z } of slab) {
              let tile;
              try {
                tile = await readTileFromChunks(image, opened.arrays, { level: k, t, c, z, x0, y0, width: Math.min(256, size.width - x0), height: Math.min(256, size.height - y0) }, cache, 'copy');
              } catch (e) {
                if (e instanceof TilefarmError) throw e;
                throw new TilefarmError('source_unreadable', `${opts.url}: level ${k} c=${c} z=${z} t=${t} could not be read: ${(e as Error).message.slice(0, 200)}`);
              }
              written.add(await opts.catalog.putSourceTile(opts.id, version, { level: k, t, z, c, x, y }, tile));
            }
          }
          done += g.cols * slab.length;
          await opts.onProgress?.(done, total);
          stopped();
        }
      }
    }
  }
  const parsed = DatasetManifest.safeParse({
    v: 1,
    id: opts.id,
    version,
    name: (opts.name ?? opts.url.replace(/\/+$/, '').split('/').pop() ?? opts.id).slice(0, 256),
    tenant: opts.tenant ?? 'public',
    width: image.width,
    height: image.height,
    sizeZ: image.sizeZ,
    sizeT: image.sizeT,
    tileSize: 256,
    levels: image.levels.length,
    dtype: image.dtype,
    channels,
    ...(image.physicalSize ? { physicalSize: image.physicalSize } : {}),
    sourceEncoding: opts.copy ? opts.catalog.sourceEncoding : 'raw-v1',
    ...(opts.copy ? {} : { source: { kind: 'zarr', url: opts.url, zarrFormat: opened.zarrFormat, ngffVersion: image.ngffVersion, fingerprint: opened.fingerprint, ...(image.sourceDtype !== image.dtype ? { dtype: image.sourceDtype } : {}), chunks: chunkExtents(image) } }),
    storedBytes: written.total,
    createdAt: new Date().toISOString(),
  });
  if (!parsed.success) throw new TilefarmError('source_unreadable', `${opts.url} cannot be described as a dataset: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const stats: DatasetStats = { v: 1, dataset: opts.id, version, planes };
  await publishWithinQuota(opts.catalog, opts.id, quota, written.total, () => opts.catalog.publish(parsed.data, stats), opts.quotaReservations);
  return parsed.data;
}
