import { TilefarmError, type DatasetManifest, type ImageFormat } from '@tilefarm/contracts';
import type { PixelRect } from './region-placement';

/**
 * Deep Zoom (DZI, as OpenSeadragon reads it): the XML descriptor and `{name}_files/{level}/{col}_{row}.{ext}`
 * tiles. DZI levels count up from a 1x1 image (level 0) to full resolution (level
 * ceil(log2(max(W, H)))), so DZI level d is our level maxLevel - d; levels coarser than the stored
 * pyramid become region renders of its coarsest level (by the workers). Pure: no I/O.
 */
type Geometry = Pick<DatasetManifest, 'width' | 'height' | 'tileSize'>;

const INT = /^(0|[1-9]\d{0,6})$/;
const EXTENSIONS: Record<string, ImageFormat> = { jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp' };

/** DZI's full-resolution level: ceil(log2(max(W, H))). */
export function dziMaxLevel(m: Pick<DatasetManifest, 'width' | 'height'>): number {
  return Math.ceil(Math.log2(Math.max(m.width, m.height)));
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function dziDescriptor(m: Geometry, format: ImageFormat): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="${m.tileSize}" Overlap="0" Format="${xmlEscape(format)}">` +
    `<Size Width="${m.width}" Height="${m.height}"/></Image>\n`
  );
}

/** `{level}` and `{col}_{row}.{ext}` → the full-resolution rectangle, output size and format. */
export function parseDziTile(m: Geometry, levelRaw: string, tileRaw: string): { rect: PixelRect; out: { width: number; height: number }; format: ImageFormat; level: number } {
  const max = dziMaxLevel(m);
  if (!INT.test(levelRaw) || Number(levelRaw) > max) throw new TilefarmError('invalid_tile', `level: "${levelRaw.slice(0, 20)}" is not a level in 0..${max}`);
  const match = /^(\d{1,7})_(\d{1,7})\.([a-z]{3,4})$/.exec(tileRaw);
  if (!match || !INT.test(match[1]!) || !INT.test(match[2]!)) throw new TilefarmError('invalid_tile', `tile: "${tileRaw.slice(0, 40)}" is not {col}_{row}.{jpeg|png|webp}`);
  const format = EXTENSIONS[match[3]!];
  if (!format) throw new TilefarmError('unknown_format', `format "${match[3]}" is not one of jpeg, png, webp`);
  const level = Number(levelRaw);
  const col = Number(match[1]);
  const row = Number(match[2]);
  const f = 2 ** (max - level);
  const levelWidth = Math.ceil(m.width / f);
  const levelHeight = Math.ceil(m.height / f);
  const ts = m.tileSize;
  if (col * ts >= levelWidth || row * ts >= levelHeight) {
    throw new TilefarmError('out_of_range', `tile ${col}_${row} is outside level ${level} (${Math.ceil(levelWidth / ts)}x${Math.ceil(levelHeight / ts)} tiles)`);
  }
  const x = col * ts * f;
  const y = row * ts * f;
  return {
    rect: { x, y, width: Math.min(ts * f, m.width - x), height: Math.min(ts * f, m.height - y) },
    out: { width: Math.min(ts, levelWidth - col * ts), height: Math.min(ts, levelHeight - row * ts) },
    format,
    level,
  };
}
