import sharp from 'sharp';

/** Interleaved 8-bit samples of one decoded JPEG or WebP stream. */
export interface DecodedImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

/**
 * Decodes a complete JPEG or WebP bitstream, as TIFF stores one per tile or strip, through
 * libvips (libjpeg-turbo, libwebp): the role "decode an image stream embedded in a TIFF chunk".
 * JPEG colour (YCbCr → RGB, or RGB as is) follows the stream's own component ids, as libtiff's
 * decode does. The output has `channels` bands: 1 grey, 3 RGB (alpha dropped), 4 RGBA (alpha
 * added if the stream has none); sharp would otherwise turn grey into three equal bands.
 */
export async function decodeEmbeddedImage(stream: Buffer, opts: { maxPixels: number; channels: 1 | 3 | 4 }): Promise<DecodedImage> {
  // failOn 'warning': a truncated or damaged stream is an error, not a half-grey tile.
  let img = sharp(stream, { limitInputPixels: opts.maxPixels, failOn: 'warning' });
  if (opts.channels === 1) img = img.toColourspace('b-w');
  else if (opts.channels === 3) img = img.removeAlpha();
  else img = img.ensureAlpha();
  const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}
