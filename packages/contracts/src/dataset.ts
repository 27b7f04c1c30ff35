import { z } from 'zod';
import { DatasetId } from './tile';

export const DTYPES = ['uint8', 'uint16', 'float32'] as const;
export const DType = z.enum(DTYPES);
export type DType = z.infer<typeof DType>;

export const HexColor = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour like "#00ff00"');

/**
 * How source tiles are stored (packages/datasets/src/source-tile-codec.ts; the tile header says
 * which, so datasets of either kind stay readable): "raw-v1" uncompressed little-endian samples,
 * "raw-deflate-v1" the same deflated.
 */
export const SOURCE_ENCODINGS = ['raw-deflate-v1', 'raw-v1'] as const;
export const SourceEncoding = z.enum(SOURCE_ENCODINGS);
export type SourceEncoding = z.infer<typeof SourceEncoding>;

export const ChannelInfo = z.object({
  label: z.string().min(1).max(128),
  color: HexColor,
  /** Default intensity window in raw units. */
  window: z.tuple([z.number(), z.number()]),
  /** Shown by default (absent: yes); an OME-Zarr's omero `active: false` turns a channel off. */
  active: z.boolean().optional(),
});
export type ChannelInfo = z.infer<typeof ChannelInfo>;

/**
 * A dataset linked to an OME-Zarr where it lies (no pixel copied): `url` is "file:<path under
 * INGEST_ROOT>" or "s3://bucket/prefix"; `fingerprint` hashes its metadata at registration, so a
 * Zarr changed afterwards is refused rather than read under the old manifest.
 */
export const LinkedZarrSource = z.object({
  kind: z.literal('zarr'),
  url: z.string().min(1).max(1024),
  zarrFormat: z.union([z.literal(2), z.literal(3)]),
  ngffVersion: z.string().max(16),
  fingerprint: z.string().max(100),
  /** The Zarr's own sample type where it differs from the dataset's dtype (int16, uint32 are held as float32). */
  dtype: z.string().max(16).optional(),
  /**
   * Each level's chunk extent in z, y and x (1 along an axis the arrays lack): the tiles a request
   * asks for that lie in one chunk (in a plane, or through its z slices) are queued as one render
   * job, so one worker reads and decodes that chunk, not every worker (tile-requests,
   * render-batches.ts). Absent from manifests written before it.
   */
  chunks: z.array(z.object({ z: z.number().int().min(1), y: z.number().int().min(1), x: z.number().int().min(1) })).max(30).optional(),
});
export type LinkedZarrSource = z.infer<typeof LinkedZarrSource>;

/**
 * The dataset manifest: written last and atomically at the end of an ingest, so a reader never
 * sees a half-written dataset. `version` goes up with each ingest of the same id and is part of
 * every tile key, so tiles of an old version are never served for new data.
 */
export const DatasetManifest = z.object({
  v: z.literal(1),
  id: DatasetId,
  version: z.number().int().min(1),
  name: z.string().max(256).optional(),
  tenant: z.string().max(64).default('public'),
  width: z.number().int().min(1),
  height: z.number().int().min(1),
  sizeZ: z.number().int().min(1),
  sizeT: z.number().int().min(1),
  tileSize: z.union([z.literal(256), z.literal(512)]),
  levels: z.number().int().min(1).max(30),
  dtype: DType,
  channels: z.array(ChannelInfo).min(1).max(1024),
  physicalSize: z
    .object({ x: z.number().positive(), y: z.number().positive(), z: z.number().positive().optional(), unit: z.string() })
    .optional(),
  /** How this version's source tiles were written: see SourceEncoding (unused when linked). */
  sourceEncoding: SourceEncoding,
  /** Set when the pixels stay in an OME-Zarr elsewhere (no source tiles under datasets/). */
  source: LinkedZarrSource.optional(),
  /**
   * Bytes of source tiles this version's ingest wrote to storage (0 when linked): what the
   * per-tenant storage quota counts. Absent on manifests written before it was recorded.
   */
  storedBytes: z.number().int().min(0).optional(),
  createdAt: z.string(),
});
export type DatasetManifest = z.infer<typeof DatasetManifest>;

export const Histogram = z.object({
  /** Inclusive range the bins cover, in raw units; bins are equal width. */
  lo: z.number(),
  hi: z.number(),
  counts: z.array(z.number().int().min(0)),
});

/** Statistics of one channel in one plane (z, t) at full resolution. */
export const PlaneStats = z.object({
  c: z.number().int().min(0),
  z: z.number().int().min(0),
  t: z.number().int().min(0),
  min: z.number(),
  max: z.number(),
  mean: z.number(),
  /** Percentiles keyed by fraction as a string, e.g. "0.02" → value. */
  percentiles: z.record(z.string(), z.number()),
  histogram: Histogram,
});
export type PlaneStats = z.infer<typeof PlaneStats>;

export const DatasetStats = z.object({
  v: z.literal(1),
  dataset: DatasetId,
  version: z.number().int().min(1),
  planes: z.array(PlaneStats),
});
export type DatasetStats = z.infer<typeof DatasetStats>;

/** Percentile fractions stored for every plane; "auto:F" windows use the nearest stored pair. */
export const STORED_PERCENTILES = [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1] as const;

/** Pixel size of level k (reduced levels are plain 2x subsampling). */
export function levelSize(manifest: Pick<DatasetManifest, 'width' | 'height'>, level: number): { width: number; height: number } {
  const f = 2 ** level;
  return { width: Math.ceil(manifest.width / f), height: Math.ceil(manifest.height / f) };
}

/** Number of tile columns and rows at level k. */
export function levelGrid(manifest: Pick<DatasetManifest, 'width' | 'height' | 'tileSize'>, level: number): { cols: number; rows: number } {
  const { width, height } = levelSize(manifest, level);
  return { cols: Math.ceil(width / manifest.tileSize), rows: Math.ceil(height / manifest.tileSize) };
}

/** What stays in storage of a deleted dataset (owners/{id}.json): whose the id is, and the last version used (never reused). */
export const DatasetOwnerRecord = z.object({ v: z.literal(1), tenant: z.string().min(1).max(64), lastVersion: z.number().int().min(0) });
export type DatasetOwnerRecord = z.infer<typeof DatasetOwnerRecord>;
