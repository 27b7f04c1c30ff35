import { z } from 'zod';
import { DatasetId } from './tile';
import { IngestJobId } from './jobs';

/**
 * Browser uploads (`/v1/uploads`): a file sent in numbered parts of `partSize` bytes (the last one
 * shorter), resumable (a part sent again replaces the earlier one; GET lists what arrived), then
 * ingested by the workers. An upload's id is the id of the ingest job it becomes, so whoever ends
 * that ingest (published or failed) knows which upload to remove.
 */
export const UploadId = IngestJobId;

/** The file names an upload takes: OME-TIFF and TIFF (what the ingest reads from one file). */
export const UploadFileName = z
  .string()
  .min(5)
  .max(200)
  .regex(/^[^/\\\u0000-\u001f]+\.(?:ome\.tiff?|tiff?)$/i, 'an upload is one .ome.tif, .ome.tiff, .tif or .tiff file');

/** POST /v1/uploads */
export const CreateUploadBody = z
  .object({
    id: DatasetId,
    filename: UploadFileName,
    size: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    name: z.string().min(1).max(256).optional(),
    ignoreOmeXml: z.boolean().optional(),
  })
  .strict();
export type CreateUploadBody = z.infer<typeof CreateUploadBody>;

/** POST /v1/uploads answer (201) and GET /v1/uploads/:uploadId. */
export interface UploadStatusBody {
  uploadId: string;
  dataset: string;
  filename: string;
  size: number;
  partSize: number;
  /** Parts in all (1-based numbers 1..parts). */
  parts: number;
  /** Part numbers stored so far, ascending: a resumed upload sends the others. */
  received: number[];
}

/** Stored with an upload (`uploads/<uploadId>/upload.json`): what the API needs to take parts and finish it. */
export const UploadRecord = z.object({
  v: z.literal(1),
  uploadId: UploadId,
  dataset: DatasetId,
  tenant: z.string().max(64),
  filename: UploadFileName,
  name: z.string().max(256).optional(),
  ignoreOmeXml: z.boolean().optional(),
  size: z.number().int().min(1),
  partSize: z.number().int().min(1),
  /** The store's multipart token. */
  token: z.string().min(1).max(1024),
  createdAt: z.string(),
  /** Set once its parts were joined and its ingest queued: from then on the ingest owns it. */
  completed: z.boolean().optional(),
});
export type UploadRecord = z.infer<typeof UploadRecord>;

/** One stored part's record (`uploads/<uploadId>/parts/<n>.json`). */
export const UploadPartRecord = z.object({ partNumber: z.number().int().min(1).max(10_000), etag: z.string().max(1024), size: z.number().int().min(0) });
export type UploadPartRecord = z.infer<typeof UploadPartRecord>;

/** The ingest source that names an upload (never accepted from clients: POST /v1/datasets refuses the scheme). */
export const UPLOAD_SOURCE_SCHEME = 'upload:';
