import type { ImageFormat } from '@tilefarm/contracts';

/** Encodes a ready 8-bit RGB buffer (width*height*3, row-major) to an image file. */
export interface TileEncoder {
  encode(rgb: Uint8Array, width: number, height: number, format: ImageFormat, quality: number): Promise<Buffer>;
}
