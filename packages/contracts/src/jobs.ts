import { z } from 'zod';
import { DATASET_ID_PATTERN, DatasetId, IMAGE_FORMATS, MAX_COORD, MAX_LEVEL, SPEC_ID_PATTERN, SpecId, TileAddress, type ImageFormat } from './tile';
import { RenderSpec } from './render-spec';

/** Largest side of a region render's output the job contract accepts (deployments configure lower). */
export const MAX_REGION_SIDE = 16384;

/** What a deployment allows a region render to cost (REGION_MAX_SIDE). */
export interface RequestedRegionLimits {
  /** Largest output side of a region render, in pixels. */
  maxSide: number;
}

const px = z.number().int().min(0).max(10_000_000);
const side = z.number().int().min(1).max(MAX_REGION_SIDE);

/**
 * A rectangle of the image rendered at an output size, instead of one grid tile: IIIF and OMERO
 * regions, Deep Zoom levels coarser than the stored pyramid, CATMAID's full-size edge tiles.
 * Coordinates are full-resolution pixels; `level` is the stored pyramid level read (sampled the
 * way the pyramid itself is: every 2^k-th pixel, nearest for other ratios). `padWidth` and
 * `padHeight` put the output on a larger black canvas at its top-left corner.
 */
export const RenderRegion = z
  .object({
    x: px,
    y: px,
    width: px.min(1),
    height: px.min(1),
    level: z.number().int().min(0).max(30),
    outWidth: side,
    outHeight: side,
    padWidth: side.optional(),
    padHeight: side.optional(),
  })
  .strict();
export type RenderRegion = z.infer<typeof RenderRegion>;

/** Largest number of tiles one render job carries (`key` and `batch` together). */
export const MAX_RENDER_BATCH = 16;

/**
 * Job payload of the render queue. The job id is `key`, so identical requests coalesce. With a
 * `region`, `tile` only carries z, t, level and format (x = y = 0) and `key` is the region's own.
 * The spec travels by id (workers resolve it from the object store, where every door registers it
 * before planning): inline it was 60 % of the payload, written and read back for every tile. An
 * inline `spec` is still accepted (jobs queued by older gateways during a rolling deploy).
 */
export const RenderJob = z.object({
  v: z.literal(1),
  key: z.string().min(1).max(512),
  dataset: DatasetId,
  version: z.number().int().min(1),
  specId: SpecId,
  spec: RenderSpec.optional(),
  tile: TileAddress,
  region: RenderRegion.optional(),
  /**
   * Further tiles of the same dataset version, spec, level and t, and z (or z slices of one source
   * chunk of a linked Zarr, packages/tile-requests/src/render-batches.ts), rendered one after the other
   * after `key` (in this order: the first is the one wanted soonest). A job with a batch is queued
   * under its own id and owns its tiles through the render-claims hash in Redis, not through its
   * id (packages/queue/src/render-claims.ts); a job without one may be either kind. Never with `region`.
   */
  batch: z.array(z.object({ key: z.string().min(1).max(512), tile: TileAddress })).min(1).max(MAX_RENDER_BATCH - 1).optional(),
});
export type RenderJob = z.infer<typeof RenderJob>;

/** What a worker publishes after a render: `ready` only once the tile is durably stored. */
export const TileEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    key: z.string(),
    dataset: DatasetId,
    specId: SpecId,
    tile: TileAddress,
    renderMs: z.number().optional(),
  }),
  z.object({
    type: z.literal('failed'),
    key: z.string(),
    dataset: DatasetId,
    specId: SpecId,
    tile: TileAddress,
    code: z.string(),
    message: z.string(),
  }),
]);
export type TileEvent = z.infer<typeof TileEvent>;

const isCount = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/**
 * A TileEvent read from a message, or `undefined` when it is not one: exactly what
 * `TileEvent.safeParse` accepts and returns (unknown fields dropped), checked by hand. Every
 * gateway and API process reads every tile event (one per rendered tile) from workers of its own
 * deployment; the schema walk cost more than the rest of handling the event. Kept equal to the
 * schema by a property test (packages/contracts/test/tile-event.test.ts).
 */
export function readTileEvent(raw: unknown): TileEvent | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const e = raw as Record<string, unknown>;
  const { type, key, dataset, specId, tile: t } = e;
  if (typeof key !== 'string' || typeof dataset !== 'string' || !DATASET_ID_PATTERN.test(dataset) || typeof specId !== 'string' || !SPEC_ID_PATTERN.test(specId)) return undefined;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) return undefined;
  const { level, z: tz, t: tt, x, y, format } = t as Record<string, unknown>;
  if (!isCount(level, MAX_LEVEL) || !isCount(tz, MAX_COORD) || !isCount(tt, MAX_COORD) || !isCount(x, MAX_COORD) || !isCount(y, MAX_COORD)) return undefined;
  if (typeof format !== 'string' || !(IMAGE_FORMATS as readonly string[]).includes(format)) return undefined;
  const tile = { level, z: tz, t: tt, x, y, format: format as ImageFormat };
  if (type === 'ready') {
    const { renderMs } = e;
    // (A key present with undefined stays, as the schema keeps it; JSON never carries one.)
    if (renderMs === undefined) return 'renderMs' in e ? { type, key, dataset, specId, tile, renderMs } : { type, key, dataset, specId, tile };
    return typeof renderMs === 'number' && Number.isFinite(renderMs) ? { type, key, dataset, specId, tile, renderMs } : undefined;
  }
  if (type === 'failed') {
    const { code, message } = e;
    return typeof code === 'string' && typeof message === 'string' ? { type, key, dataset, specId, tile, code, message } : undefined;
  }
  return undefined;
}

/**
 * Names one queued ingest (POST /v1/datasets). BullMQ job ids must not contain ":" nor be all
 * digits; the "ing-" start guarantees the latter.
 */
export const IngestJobId = z.string().regex(/^ing-[a-z0-9_-]{1,120}$/, 'must be an ingest job id as returned by POST /v1/datasets');
export type IngestJobId = z.infer<typeof IngestJobId>;

/** Where an ingest reads from: a path under the server's ingest root, or s3://bucket/key. */
export const IngestSourceRef = z.string().min(1).max(2048);

/** First step (queue "ingest", job id = `jobId`): read the headers, reserve a version, fan out one job per unit. */
export const IngestStartJob = z.object({
  v: z.literal(1),
  jobId: IngestJobId,
  dataset: DatasetId,
  source: IngestSourceRef,
  name: z.string().max(256).optional(),
  /** Owner of the new dataset: the tenant of the token that asked for the ingest. */
  tenant: z.string().max(64).default('public'),
  /** Read an OME-TIFF as a plain TIFF (POST /v1/datasets `ignoreOmeXml`). */
  ignoreOmeXml: z.boolean().optional(),
  /** Set for OME-Zarr sources: "link" registers it where it lies, "copy" writes our own source tiles from it. */
  mode: z.enum(['link', 'copy']).optional(),
});
export type IngestStartJob = z.infer<typeof IngestStartJob>;

/** One unit (one page of the file: all levels of its channels). Returns the unit's PlaneStats[]. */
export const IngestPlaneJob = z.object({
  v: z.literal(1),
  jobId: IngestJobId,
  dataset: DatasetId,
  source: IngestSourceRef,
  unit: z.number().int().min(0),
});
export type IngestPlaneJob = z.infer<typeof IngestPlaneJob>;

/** Runs once every unit is done (the parent of the unit jobs): publishes the dataset. */
export const IngestFinishJob = z.object({
  v: z.literal(1),
  jobId: IngestJobId,
  dataset: DatasetId,
  units: z.number().int().min(1),
});
export type IngestFinishJob = z.infer<typeof IngestFinishJob>;

/** Ingest progress as published by workers over Redis; gateways forward it as `ingest:progress`. */
export const IngestEvent = z.object({
  jobId: IngestJobId,
  dataset: DatasetId,
  done: z.number().int().min(0),
  total: z.number().int().min(0),
  state: z.enum(['running', 'completed', 'failed']),
  version: z.number().int().min(1).optional(),
  code: z.string().optional(),
  message: z.string().optional(),
});
export type IngestEvent = z.infer<typeof IngestEvent>;
