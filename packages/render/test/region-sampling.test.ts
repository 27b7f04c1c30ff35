import type { SourceTile } from '@tilefarm/contracts';
import { padRgb, regionSampling, sampleRegion } from '../src/region-sampling';

// A 600x300 plane whose sample at (x, y) is x + 1000*y (uint32-free: float32), stored at 256 px
// tiles with the pyramid's rule (level k holds every 2^k-th pixel).
const W = 600;
const H = 300;
const TS = 256 as const;
const value = (x: number, y: number) => x + 1000 * y;

function storedTile(level: number, tx: number, ty: number): SourceTile {
  const f = 2 ** level;
  const lw = Math.ceil(W / f);
  const lh = Math.ceil(H / f);
  const width = Math.min(TS, lw - tx * TS);
  const height = Math.min(TS, lh - ty * TS);
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value((tx * TS + x) * f, (ty * TS + y) * f);
  return { width, height, dtype: 'float32', data };
}

function render(region: Parameters<typeof regionSampling>[1]): SourceTile {
  const m = { width: W, height: H, tileSize: TS };
  const s = regionSampling(m, region);
  return sampleRegion(s, TS, 'float32', (x, y) => storedTile(region.level, x, y));
}

describe('region sampling', () => {
  it('at level 0 with output = region: exactly the pixels of the area, across tile borders', () => {
    const out = render({ x: 250, y: 10, width: 20, height: 260, level: 0, outWidth: 20, outHeight: 260 });
    for (const [x, y] of [[0, 0], [5, 0], [6, 0], [19, 259], [7, 246]] as const) expect(out.data[y * 20 + x]).toBe(value(250 + x, 10 + y));
  });

  it('a power-of-two output samples like the pyramid: every 2^k-th pixel, edges included', () => {
    const out = render({ x: 0, y: 0, width: W, height: H, level: 1, outWidth: 75, outHeight: 38 });
    expect([out.width, out.height]).toEqual([75, 38]);
    for (const [x, y] of [[0, 0], [74, 37], [30, 20]] as const) expect(out.data[y * 75 + x]).toBe(value(x * 8, y * 8));
  });

  it('names only the stored tiles it reads', () => {
    const s = regionSampling({ width: W, height: H, tileSize: TS }, { x: 250, y: 10, width: 20, height: 20, level: 0, outWidth: 20, outHeight: 20 });
    expect(s.tiles).toEqual([
      { x: 0, y: 0 },
      { x: 1, y: 0 },
    ]);
  });

  it('padRgb puts the picture top-left on black', () => {
    const rgb = new Uint8Array([1, 2, 3, 4, 5, 6]); // 2x1
    expect([...padRgb(rgb, 2, 1, 3, 2)]).toEqual([1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
