import type { Sharp } from 'sharp';

/**
 * Ingest's one door to sharp: PNG/JPEG/WebP headers and whole-image decodes (TIFF is read by
 * ./tiff, without sharp). sharp is loaded on the first raster file, not when the package is
 * imported: the API imports this package to check ingest sources and must not load sharp.
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

async function open(path: string, options: { limitInputPixels: number | false; failOn?: 'error' }): Promise<Sharp> {
  const { default: sharp } = await import('sharp');
  return sharp(path, options);
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
