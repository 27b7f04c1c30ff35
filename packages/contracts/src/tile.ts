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
export const DatasetId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1-64 characters of a-z, 0-9, "_" or "-", starting with a letter or digit');
export type DatasetId = z.infer<typeof DatasetId>;

export const SpecId = z.string().regex(/^s[0-9a-f]{16}$/, 'must be a spec id as returned by POST /v1/specs');
export type SpecId = z.infer<typeof SpecId>;

const coord = z.number().int().min(0).max(1_000_000);

/** Where a tile is: level 0 = full resolution, level k = downsampled by 2^k; x, y = tile column, row. */
export const TilePosition = z.object({
  level: z.number().int().min(0).max(30),
  z: coord,
  t: coord,
  x: coord,
  y: coord,
});
export type TilePosition = z.infer<typeof TilePosition>;

export const TileAddress = TilePosition.extend({ format: ImageFormat });
export type TileAddress = z.infer<typeof TileAddress>;
