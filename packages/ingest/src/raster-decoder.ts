import type { Sharp } from 'sharp';

/**
 * Ingest's one door to sharp: PNG/JPEG/WebP files (headers, whole-image decodes) and the JPEG/WebP
 * streams a TIFF stores per tile or strip (./tiff reads everything else without sharp). sharp is
 * loaded on first use, not when the package is imported: the API imports this package to check
 * ingest sources and must not load sharp.
 */

export interface RasterInfo {
  width: number;
  height: number;
  format: string | undefined;
  /** Bands including alpha. */
  channels: number;
  hasAlpha: boolean;
  /** libvips' sample type: 'uchar' (8-bit), 'ushort' (16-bit), others unsupported here. */
  depth: string | undefined;
}

export interface DecodedRaster {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function open(input: string | Buffer, options: { limitInputPixels: number | false; failOn?: 'error' | 'warning' }): Promise<Sharp> {
  const { default: sharp } = await import('sharp');
  return sharp(input, options);
}

/** Reads the header only; throws sharp's own error for a file it cannot read. */
export async function readRasterInfo(path: string): Promise<RasterInfo> {
  const meta = await (await open(path, { limitInputPixels: false })).metadata();
  return { width: meta.width ?? 0, height: meta.height ?? 0, format: meta.format, channels: meta.channels ?? 1, hasAlpha: meta.hasAlpha ?? false, depth: meta.depth };
}

/** Decodes the whole image to interleaved grey or RGB samples, alpha dropped. */
export async function decodeRaster(path: string, options: { maxPixels: number; bands: 1 | 3; sixteenBit: boolean }): Promise<DecodedRaster> {
  const { bands, sixteenBit } = options;
  let img = (await open(path, { limitInputPixels: options.maxPixels, failOn: 'error' })).removeAlpha();
  img = bands === 1 ? img.toColourspace(sixteenBit ? 'grey16' : 'b-w') : img.toColourspace(sixteenBit ? 'rgb16' : 'srgb');
  const out = await img.raw({ depth: sixteenBit ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data: out.data, width: out.info.width, height: out.info.height, channels: out.info.channels };
}

/** Interleaved 8-bit samples of one decoded JPEG or WebP stream. */
export type DecodedImage = DecodedRaster;

/**
 * Decodes a complete JPEG or WebP bitstream, as TIFF stores one per tile or strip, through
 * libvips (libjpeg-turbo, libwebp). JPEG colour (YCbCr → RGB, or RGB as is) follows the stream's
 * own component ids, as libtiff's decode does. The output has `channels` bands: 1 grey, 3 RGB
 * (alpha dropped), 4 RGBA (alpha added if the stream has none); sharp would otherwise turn grey
 * into three equal bands.
 */
export async function decodeEmbeddedImage(stream: Buffer, opts: { maxPixels: number; channels: 1 | 3 | 4 }): Promise<DecodedImage> {
  // failOn 'warning': a truncated or damaged stream is an error, not a half-grey tile.
  let img = await open(stream, { limitInputPixels: opts.maxPixels, failOn: 'warning' });
  if (opts.channels === 1) img = img.toColourspace('b-w');
  else if (opts.channels === 3) img = img.removeAlpha();
  else img = img.ensureAlpha();
  const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}
