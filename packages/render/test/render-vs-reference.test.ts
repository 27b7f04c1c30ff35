import sharp from 'sharp';
import { type DType, RenderSpec, type RenderSpecInput, TilefarmError } from '@tilefarm/contracts';
import { LUT_TABLES } from '@tilefarm/render';
import { createSharpTileRenderer } from '@tilefarm/render/encoder';
import { type FormulaFn, fin, referenceRender } from './reference-renderer';
import { H, W, makeSources, manifestFor, statsFor } from './fixtures';

interface Case {
  name: string;
  spec: (full: number) => RenderSpecInput;
  z?: number;
  formulas?: Record<number, FormulaFn>;
  /** Hand-computed auto windows of formula channels, from the per-channel auto windows. */
  formulaWindows?: (auto: (c: number, trim: number) => [number, number]) => Record<number, [number, number]>;
  stats?: boolean;
}

const w = (full: number, lo: number, hi: number): [number, number] => [Math.round(lo * full), Math.round(hi * full)];

const CASES: Case[] = [
  { name: 'one channel, manifest defaults (colour, window)', spec: () => ({ channels: [{ index: 0 }] }) },
  { name: 'three primaries add (separable path)', spec: () => ({ channels: [{ index: 0 }, { label: 'B' }, { index: 2 }] }) },
  { name: 'explicit colours and windows, add', spec: (f) => ({ channels: [{ index: 0, color: '#ff8000', window: w(f, 0.1, 0.6) }, { index: 1, color: '#00ffff', window: w(f, 0.2, 0.9) }] }) },
  { name: 'mixed colours, max', spec: (f) => ({ composite: 'max', channels: [{ index: 0, color: '#ff8000', window: w(f, 0.1, 0.6) }, { index: 1, color: '#40ffff' }, { index: 3 }] }) },
  { name: 'four channels add (generic path)', spec: () => ({ channels: [{ index: 0 }, { index: 1 }, { index: 2 }, { index: 3 }] }) },
  { name: 'four channels max (generic path)', spec: () => ({ composite: 'max', channels: [{ index: 0 }, { index: 1 }, { index: 2 }, { index: 3 }] }) },
  { name: 'lo == hi window is a step', spec: (f) => ({ channels: [{ index: 0, window: w(f, 0.4, 0.4), color: '#ffffff' }, { index: 1, window: [0, 0] }] }) },
  { name: 'gamma < 1 and > 1', spec: () => ({ channels: [{ index: 0, gamma: 0.5 }, { index: 1, gamma: 2.2 }, { index: 2, gamma: 0.3 }] }) },
  { name: 'invert', spec: () => ({ channels: [{ index: 0, invert: true }, { index: 1, invert: true, gamma: 0.7, color: '#ffff00' }] }) },
  { name: 'inactive channels are skipped', spec: () => ({ channels: [{ index: 0, active: false }, { index: 1 }, { index: 2, active: false }, { index: 3, color: '#00ff00', active: false }] }) },
  { name: 'z slice other than 0', spec: () => ({ channels: [{ index: 0 }, { index: 1 }] }), z: 2 },
  ...(['gray', 'fire', 'viridis', 'magma', 'inferno', 'cividis', 'ice'] as const).map(
    (lut): Case => ({ name: `LUT ${lut} (with gamma, and a second LUT inverted)`, spec: (f) => ({ channels: [{ index: 0, lut, gamma: 0.8, window: w(f, 0.05, 0.9) }, { index: 1, lut, invert: true, window: w(f, 0.3, 0.7) }] }) }),
  ),
  { name: 'LUT max with colour', spec: () => ({ composite: 'max', channels: [{ index: 0, lut: 'fire' }, { index: 1, color: '#00ff00' }] }) },
  { name: 'projection max, range clamped to sizeZ', spec: () => ({ projection: { type: 'max', z: [1, 9] }, channels: [{ index: 0 }, { index: 1 }] }) },
  { name: 'projection mean', spec: () => ({ projection: { type: 'mean', z: [0, 2] }, channels: [{ index: 0 }, { index: 1, lut: 'viridis' }] }) },
  { name: 'projection sum', spec: (f) => ({ projection: { type: 'sum', z: [0, 2] }, channels: [{ index: 0, window: w(f, 0.3, 2.5) }, { index: 2, window: w(f, 0, 1.5), gamma: 0.6 }] }) },
  {
    name: 'formula: linear band math',
    spec: (f) => ({ channels: [{ formula: 'c0 + 2*(c3 - c1)', window: w(f, -0.5, 1.5), color: '#00ff00' }, { index: 2 }] }),
    formulas: { 0: (c) => c(0) + 2 * (c(3) - c(1)) },
  },
  {
    name: 'formula: where, comparisons and labels',
    spec: (f) => ({ channels: [{ formula: 'where(ch("A") > c1, c0, 0) + (c2 >= c3) * 10', window: w(f, 0, 0.8), lut: 'magma' }] }),
    formulas: { 0: (c) => (c(0) > c(1) ? c(0) : 0) + (c(2) >= c(3) ? 1 : 0) * 10 },
  },
  {
    name: 'formula: log, sqrt, abs, unary minus',
    spec: () => ({ channels: [{ formula: 'log(c0 + 1)', window: [0, 11], color: '#ff00ff' }, { formula: 'sqrt(abs(c1 - c0)) - -c2/1000', window: [0, 300] }] }),
    formulas: { 0: (c) => fin(Math.log(c(0) + 1)), 1: (c) => fin(Math.sqrt(Math.abs(c(1) - c(0)))) - -fin(c(2) / 1000) },
  },
  {
    name: 'formula: division by zero is 0, min/max/clamp/pow',
    spec: () => ({ channels: [{ formula: 'max(c0, c1, c2) / (c2 - c2)', window: [0, 1] }, { formula: 'clamp(c0 * 1.5, 10, 200) ^ 0.5 + min(c1, 3)', window: [0, 20], lut: 'ice' }, { formula: 'c1 / c3', window: [0, 4], color: '#0000ff' }] }),
    formulas: {
      0: (c) => fin(Math.max(c(0), c(1), c(2)) / (c(2) - c(2))),
      1: (c) => fin(Math.pow(Math.min(Math.max(c(0) * 1.5, 10), 200), 0.5)) + Math.min(c(1), 3),
      2: (c) => fin(c(1) / c(3)),
    },
  },
  {
    name: 'formula on a max projection',
    spec: (f) => ({ projection: { type: 'max', z: [0, 2] }, channels: [{ formula: 'c0 - c1 / 2', window: w(f, -0.2, 0.8) }] }),
    formulas: { 0: (c) => c(0) - c(1) / 2 },
  },
  { name: 'auto windows from stats', stats: true, spec: () => ({ channels: [{ index: 0, window: 'auto' }, { index: 1, window: 'auto:0.02' }, { index: 2, window: 'auto:0.1', lut: 'inferno' }] }) },
  { name: 'auto windows on a projection (max and mean)', stats: true, spec: () => ({ projection: { type: 'max', z: [0, 2] }, channels: [{ index: 0, window: 'auto' }, { index: 1, window: 'auto:0.01' }] }) },
  { name: 'auto windows on a mean projection', stats: true, spec: () => ({ projection: { type: 'mean', z: [0, 1] }, channels: [{ index: 0, window: 'auto:0.05' }, { index: 3, window: 'auto' }] }) },
  { name: 'auto windows without stats = dtype range', stats: false, spec: () => ({ channels: [{ index: 0, window: 'auto' }, { index: 1, window: 'auto:0.02' }] }) },
  {
    name: 'formula auto window = interval bounds of its inputs',
    stats: true,
    spec: () => ({ channels: [{ formula: 'c0 + 2*c1', color: '#ffffff' }, { formula: 'c2 - c3', window: 'auto:0.02', lut: 'cividis' }] }),
    formulas: { 0: (c) => c(0) + 2 * c(1), 1: (c) => c(2) - c(3) },
    formulaWindows: (auto) => {
      const [a, b, c, d] = [auto(0, 0), auto(1, 0), auto(2, 0.02), auto(3, 0.02)];
      return { 0: [a[0] + 2 * b[0], a[1] + 2 * b[1]], 1: [c[0] - d[1], c[1] - d[0]] };
    },
  },
];

async function decode(buf: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function maxDiff(a: Uint8Array, b: Uint8Array): { max: number; at: number } {
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (d > max) {
      max = d;
      at = i;
    }
  }
  return { max, at };
}

function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += ((a[i] as number) - (b[i] as number)) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

describe.each(['uint8', 'uint16'] as DType[])('engine vs reference on %s edge tiles (100x37)', (dtype) => {
  const manifest = manifestFor(dtype);
  const noisy = makeSources(dtype);
  const noisyStats = statsFor(dtype, noisy);
  // Microscopy-like noise for JPEG: uniform noise over a quarter of the range is beyond what any JPEG keeps at 40 dB.
  const smooth = makeSources(dtype, 0.03);
  const smoothStats = statsFor(dtype, smooth);
  const full = dtype === 'uint8' ? 255 : 65535;
  const renderer = createSharpTileRenderer();

  async function run(c: Case, format: 'png' | 'jpeg', quality = 95) {
    const [sources, stats] = format === 'jpeg' ? [smooth, smoothStats] : [noisy, noisyStats];
    const spec = RenderSpec.parse({ ...c.spec(full), format, quality });
    const z = c.z ?? 0;
    const useStats = c.stats !== false;
    const tile = { level: 0, z, t: 0, x: 1, y: 1, format };
    const out = await renderer.render({
      manifest,
      stats: useStats ? stats : undefined,
      spec,
      tile,
      readSource: async (ch, zz) => ({ width: W, height: H, dtype, data: sources[ch]![zz]! }),
    });
    // Hand-derived auto windows for formula channels use the same per-channel rule as the reference.
    const autoOf = (ch: number, trim: number): [number, number] => {
      const ps = stats.planes.filter((p) => p.c === ch && p.t === 0 && p.z === z);
      const p = ps[0]!;
      return trim === 0 ? [p.min, p.max] : [p.percentiles[String(trim)]!, p.percentiles[String(1 - trim)]!];
    };
    const expected = referenceRender({
      manifest,
      stats: useStats ? stats : undefined,
      spec,
      z,
      t: 0,
      width: W,
      height: H,
      sample: (ch, zz, i) => sources[ch]![zz]![i]!,
      formulas: c.formulas,
      formulaWindows: c.formulaWindows?.(autoOf),
      luts: LUT_TABLES,
    });
    return { out, expected };
  }

  it.each(CASES.map((c) => [c.name, c] as const))('PNG within ±1: %s', async (_name, c) => {
    const { out, expected } = await run(c, 'png');
    expect(out.contentType).toBe('image/png');
    expect([out.width, out.height]).toEqual([W, H]);
    const got = await decode(out.body);
    expect([got.width, got.height, got.channels]).toEqual([W, H, 3]);
    const d = maxDiff(got.data, expected);
    if (d.max > 1) {
      const px = Math.floor(d.at / 3);
      throw new Error(`pixel ${px} (x ${px % W}, y ${Math.floor(px / W)}) component ${d.at % 3}: engine ${got.data[d.at]} reference ${expected[d.at]}`);
    }
    // Not trivially black: every case paints something.
    expect(expected.some((v) => v > 0)).toBe(true);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('JPEG q98 PSNR >= 40 dB: %s', async (_name, c) => {
    const { out, expected } = await run(c, 'jpeg', 98);
    expect(out.contentType).toBe('image/jpeg');
    const got = await decode(out.body);
    expect(psnr(got.data, expected)).toBeGreaterThanOrEqual(40);
  });

  it('WebP encodes at the tile size', async () => {
    const { out } = await run(CASES[1]!, 'png');
    const webp = await renderer.render({
      manifest,
      stats: noisyStats,
      spec: RenderSpec.parse({ channels: [{ index: 0 }], format: 'png' }),
      tile: { level: 0, z: 0, t: 0, x: 1, y: 1, format: 'webp' },
      readSource: async (ch, zz) => ({ width: W, height: H, dtype, data: noisy[ch]![zz]! }),
    });
    expect(webp.contentType).toBe('image/webp');
    expect((await sharp(webp.body).metadata()).width).toBe(W);
    expect(out.body.length).toBeGreaterThan(0);
  });
});

describe('engine edge behaviour', () => {
  const manifest = manifestFor('uint16');
  const renderer = createSharpTileRenderer();

  it('a spec with no active channel gives a black tile of the edge size, reading nothing', async () => {
    const reads: number[] = [];
    const out = await renderer.render({
      manifest,
      stats: undefined,
      spec: RenderSpec.parse({ channels: [{ index: 0, active: false }], format: 'png' }),
      tile: { level: 0, z: 0, t: 0, x: 1, y: 1, format: 'png' },
      readSource: async (c) => {
        reads.push(c);
        throw new Error('no read expected');
      },
    });
    const got = await decode(out.body);
    expect([got.width, got.height]).toEqual([W, H]);
    expect(got.data.every((v) => v === 0)).toBe(true);
    expect(reads).toEqual([]);
  });

  it('reports reader failures as source_unreadable and mismatched tiles too', async () => {
    const spec = RenderSpec.parse({ channels: [{ index: 0 }, { index: 1 }] });
    const tile = { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'jpeg' as const };
    await expect(
      renderer.render({ manifest, stats: undefined, spec, tile, readSource: async () => Promise.reject(new Error('disk on fire')) }),
    ).rejects.toMatchObject({ code: 'source_unreadable', message: expect.stringContaining('disk on fire') });
    await expect(
      renderer.render({
        manifest,
        stats: undefined,
        spec,
        tile,
        readSource: async (c) => ({ width: c === 0 ? 10 : 11, height: 10, dtype: 'uint16', data: new Uint16Array((c === 0 ? 10 : 11) * 10) }),
      }),
    ).rejects.toMatchObject({ code: 'source_unreadable' });
  });

  it('formula auto windows that cannot be bounded ask for an explicit window', async () => {
    const spec = RenderSpec.parse({ channels: [{ formula: 'c0 / c1' }] });
    const err = await renderer
      .render({
        manifest,
        stats: undefined,
        spec,
        tile: { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'jpeg' },
        readSource: async () => ({ width: 4, height: 4, dtype: 'uint16', data: new Uint16Array(16) }),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TilefarmError);
    expect((err as TilefarmError).code).toBe('invalid_spec');
    expect((err as TilefarmError).message).toMatch(/^channels\.0\.window: /);
  });

  it('reports timings and re-uses the plan', async () => {
    const spec = RenderSpec.parse({ channels: [{ index: 0 }] });
    const input = {
      manifest,
      stats: undefined,
      spec,
      tile: { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'jpeg' as const },
      readSource: async () => ({ width: 8, height: 8, dtype: 'uint16' as const, data: new Uint16Array(64).fill(1000) }),
    };
    const a = await renderer.render(input);
    await renderer.render({ ...input, spec: RenderSpec.parse({ channels: [{ index: 0 }] }) });
    expect(a.timings.encodeMs).toBeGreaterThan(0);
    expect(renderer.cacheStats().plans.hits).toBeGreaterThanOrEqual(1);
  });
});
