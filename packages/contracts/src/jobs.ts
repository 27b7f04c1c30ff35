import { z } from 'zod';
import { DatasetId, SpecId, TileAddress } from './tile';
import { RenderSpec } from './render-spec';

/** Job payload of the render queue. The job id is `key`, so identical requests coalesce. */
export const RenderJob = z.object({
  v: z.literal(1),
  key: z.string().min(1).max(512),
  dataset: DatasetId,
  version: z.number().int().min(1),
  specId: SpecId,
  spec: RenderSpec,
  tile: TileAddress,
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
