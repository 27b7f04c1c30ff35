import sharp from 'sharp';
import { type ImageFormat, TilefarmError } from '@tilefarm/contracts';
import type { TileEncoder } from './tile-encoder';

/**
 * The render package's one door to sharp, loaded only through the `@tilefarm/render/encoder` entry
 * (ingest decodes through its own, packages/ingest/src/raster-decoder.ts). One sharp call per
 * tile: the pixels are composited in typed arrays and sharp only encodes the finished RGB buffer
 * (per-call setup costs as much as the codec at 256²).
 */

export interface SharpEncoderOptions {
  /**
   * mozjpeg's Huffman optimisation: ~9 % smaller files for 20–30 % more encode time
   * (bench/render.ts measures it). Off by default: encode time is the worker's ceiling and tiles
   * are re-rendered on demand; set true where storage/egress matters more than throughput.
   */
  jpegOptimiseCoding?: boolean;
  /** zlib level for PNG; 1 is close to JPEG speed and the files are still lossless. */
  pngCompressionLevel?: number;
  /** libwebp effort 0..6; 2 keeps WebP (already ~4x slower than JPEG) usable for on-the-fly tiles. */
  webpEffort?: number;
}

export class SharpTileEncoder implements TileEncoder {
  private readonly jpegOptimiseCoding: boolean;
  private readonly pngCompressionLevel: number;
  private readonly webpEffort: number;

  constructor(options: SharpEncoderOptions = {}) {
    this.jpegOptimiseCoding = options.jpegOptimiseCoding ?? false;
    this.pngCompressionLevel = options.pngCompressionLevel ?? 1;
    this.webpEffort = options.webpEffort ?? 2;
  }

  async encode(rgb: Uint8Array, width: number, height: number, format: ImageFormat, quality: number): Promise<Buffer> {
    const img = sharp(rgb, { raw: { width, height, channels: 3 } });
    try {
      switch (format) {
        case 'jpeg':
          return await img
            .jpeg({
              quality,
              optimiseCoding: this.jpegOptimiseCoding,
              // libvips' own rule: no chroma subsampling at Q >= 90, where the caller asked for fidelity
              // (saturated single-channel colours lose much at 4:2:0).
              chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0',
            })
            .toBuffer();
        case 'png':
          return await img.png({ compressionLevel: this.pngCompressionLevel, adaptiveFiltering: false }).toBuffer();
        case 'webp':
          return await img.webp({ quality, effort: this.webpEffort }).toBuffer();
      }
    } catch (e) {
      throw new TilefarmError('render_failed', `encoding a ${width}x${height} ${format} tile failed: ${(e as Error).message}`);
    }
  }
}

export interface SharpSettings {
  /**
   * libvips' operation cache. It helps repeated file reads, not a tile worker that encodes fresh
   * buffers: false (the default here) turns it off; a number caps it in MB.
   */
  cache?: false | number;
  /**
   * libvips threads per operation. 1 suits small tiles with several in flight: parallelism then
   * comes from the libuv pool (UV_THREADPOOL_SIZE, 4 by default) running tiles side by side.
   */
  concurrency?: number;
}

/**
 * sharp's settings are process-global, so they are applied only when the worker's main calls this,
 * never on import.
 */
export function configureSharp(settings: SharpSettings = {}): { cache: ReturnType<typeof sharp.cache>; concurrency: number } {
  const cache = settings.cache ?? false;
  if (cache === false) sharp.cache(false);
  else sharp.cache({ memory: cache, files: 0, items: 200 });
  const concurrency = sharp.concurrency(settings.concurrency ?? 1);
  return { cache: sharp.cache(), concurrency };
}
