import sharp from 'sharp';

/** A delivered tile decoded back to the RGB the encoder was given (untimed setup for the encode baseline). */
export async function decodeImage(body: Buffer): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(body).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels, expected RGB`);
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/**
 * A 16-bit grey plane as a tiled pyramidal TIFF (uncompressed 256² tiles, one page per level), the
 * layout IIPImage serves.
 */
export async function writePyramidTiff(path: string, plane: Uint16Array, width: number, height: number): Promise<void> {
  // A Uint16Array as raw input is read as 16-bit samples (sharp takes the depth from the array type).
  await sharp(plane, { raw: { width, height, channels: 1 } })
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'none' })
    .toFile(path);
}

/** Header facts of an encoded image (bench sanity checks). */
export async function imageInfo(body: Buffer): Promise<{ width: number; height: number; channels: number; format: string }> {
  const m = await sharp(body).metadata();
  return { width: m.width ?? 0, height: m.height ?? 0, channels: m.channels ?? 0, format: m.format ?? '?' };
}
