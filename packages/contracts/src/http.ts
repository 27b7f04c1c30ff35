import { z } from 'zod';
import type { ChannelInfo, DType } from './dataset';

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
  createdAt: string;
  updatedAt: string;
}
