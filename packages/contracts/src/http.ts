import { z } from 'zod';
import type { ChannelInfo, DType } from './dataset';
import { DatasetId } from './tile';

/** Body limits: a spec with 64 channels and long formulas is well under this. */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

export interface SpecCreated {
  id: string;
}

export interface DatasetSummary {
  id: string;
  version: number;
  name?: string;
  width: number;
  height: number;
  sizeZ: number;
  sizeT: number;
  sizeC: number;
  tileSize: number;
  levels: number;
  dtype: DType;
  channels: ChannelInfo[];
  /** Physical pixel size (OME PhysicalSizeX/Y/Z, NGFF scale); absent when the file has none. */
  physicalSize?: { x: number; y: number; z?: number; unit: string };
}

export interface TileStatusBody {
  key: string;
  state: 'ready' | 'waiting' | 'active' | 'failed' | 'unknown';
  url?: string;
}

export const CreateIngestBody = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
    /** A path on the server (under the configured ingest root) or an s3://bucket/key URL. */
    source: z.string().min(1).max(2048),
    name: z.string().max(256).optional(),
    /** Read an OME-TIFF's pages as a plain TIFF (its OME-XML does not describe it); the status lists a warning. */
    ignoreOmeXml: z.boolean().optional(),
    /**
     * "link" (the default for an OME-Zarr, a source ending in .zarr): register it where it lies,
     * no pixel copied; "copy" writes tilefarm's own source tiles (TIFF sources).
     */
    mode: z.enum(['link', 'copy']).optional(),
  })
  .strict();
export type CreateIngestBody = z.infer<typeof CreateIngestBody>;

/** 202 answer of POST /v1/datasets. */
export interface IngestAccepted {
  jobId: string;
  dataset: string;
  /** GET it for the status (IngestStatusBody); or watch `jobId` over the socket (`ingest:watch`). */
  statusUrl: string;
}

export type IngestState = 'queued' | 'planning' | 'running' | 'publishing' | 'completed' | 'failed';

/** GET /v1/ingests/:jobId */
export interface IngestStatusBody {
  jobId: string;
  dataset: string;
  state: IngestState;
  /** Source tiles written, of `total` (0 until planned). */
  done: number;
  total: number;
  /** Units (file pages) finished, of `units`. */
  unitsDone: number;
  units: number;
  version?: number;
  error?: { code: string; message: string };
  /** Not fatal, for the user (e.g. OME-XML ignored on request); absent when there are none. */
  warnings?: string[];
  createdAt: string;
  updatedAt: string;
}

/** `/v1/tiles/{dataset}/{specId}/{level}/{z}/{t}/{x}/{y}.{format}`, as a path (no host, no query). */
export const TILE_ADDRESS_PATH = /^\/v1\/tiles\/([a-z0-9][a-z0-9_-]{0,63})\/s[0-9a-f]{16}\/(?:0|[1-9][0-9]{0,6})\/(?:0|[1-9][0-9]{0,6})\/(?:0|[1-9][0-9]{0,6})\/(?:0|[1-9][0-9]{0,6})\/(?:0|[1-9][0-9]{0,6})\.(?:jpeg|jpg|png|webp)$/;

/** Most paths one POST /v1/tile-urls signs (a screenful of tiles many times over). */
export const MAX_SIGNED_PATHS = 1024;

/** POST /v1/tile-urls: tile address paths to sign for a token holder (signed URLs on). */
export const SignTileUrlsBody = z
  .object({
    paths: z
      .array(z.string().max(256).regex(TILE_ADDRESS_PATH, 'must be a /v1/tiles/{dataset}/{specId}/{level}/{z}/{t}/{x}/{y}.{format} path'))
      .min(1)
      .max(MAX_SIGNED_PATHS),
  })
  .strict();
export type SignTileUrlsBody = z.infer<typeof SignTileUrlsBody>;

/** 200 answer of POST /v1/tile-urls: the same paths, in order, with `?sig=` (and `exp=`) when signing is on. */
export interface TileUrlsSigned {
  urls: string[];
}

/**
 * POST /v1/zarr-urls: signed roots of datasets' OME-Zarr views for a token holder. A root
 * `/zarr/{id}.zarr?sig=…` is signed as a whole: Zarr clients (zarrita, Viv) carry the root's query
 * to every key they read under it, and every key under it is accepted with it.
 */
export const SignZarrUrlsBody = z.object({ datasets: z.array(DatasetId).min(1).max(100) }).strict();
export type SignZarrUrlsBody = z.infer<typeof SignZarrUrlsBody>;

/** 200 answer of POST /v1/zarr-urls: one root per dataset, in order (`?sig=`, `exp=` when signing is on). */
export interface ZarrUrlsSigned {
  urls: string[];
}
