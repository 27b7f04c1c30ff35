import { z } from 'zod';

export const IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;
export const ImageFormat = z.enum(IMAGE_FORMATS);
export type ImageFormat = z.infer<typeof ImageFormat>;

export const MIME_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

/** Dataset ids appear in storage keys, URLs and job ids: keep them to a safe alphabet. */
export const DATASET_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const DatasetId = z.string().regex(DATASET_ID_PATTERN, 'must be 1-64 characters of a-z, 0-9, "_" or "-", starting with a letter or digit');
export type DatasetId = z.infer<typeof DatasetId>;

export const SPEC_ID_PATTERN = /^s[0-9a-f]{16}$/;
export const SpecId = z.string().regex(SPEC_ID_PATTERN, 'must be a spec id as returned by POST /v1/specs');
export type SpecId = z.infer<typeof SpecId>;

/** Largest tile coordinate (z, t, x, y) and level a tile address may have. */
export const MAX_COORD = 1_000_000;
export const MAX_LEVEL = 30;
const coord = z.number().int().min(0).max(MAX_COORD);

/** Where a tile is: level 0 = full resolution, level k = downsampled by 2^k; x, y = tile column, row. */
export const TilePosition = z.object({
  level: z.number().int().min(0).max(MAX_LEVEL),
  z: coord,
  t: coord,
  x: coord,
  y: coord,
});
export type TilePosition = z.infer<typeof TilePosition>;

export const TileAddress = TilePosition.extend({ format: ImageFormat });
export type TileAddress = z.infer<typeof TileAddress>;
