import { DatasetManifest, type DatasetStats, type DType, type PixelArray, STORED_PERCENTILES } from '@tilefarm/contracts';

/** An edge tile on purpose: tile (1, 1) of a 356x293 image with 256-px tiles is 100x37. */
export const W = 100;
export const H = 37;
export const SIZE_Z = 3;
export const N_CHANNELS = 4;

export function manifestFor(dtype: DType): DatasetManifest {
  const full = dtype === 'uint8' ? 255 : dtype === 'uint16' ? 65535 : 1;
  return DatasetManifest.parse({
    v: 1,
    id: `ref-${dtype}`,
    version: 1,
    width: 256 + W,
    height: 256 + H,
    sizeZ: SIZE_Z,
    sizeT: 1,
    tileSize: 256,
    levels: 1,
    dtype,
    channels: [
      { label: 'A', color: '#0000ff', window: [0.05 * full, 0.7 * full] },
      { label: 'B', color: '#00ff00', window: [0.1 * full, 0.8 * full] },
      { label: 'C', color: '#ff0000', window: [0, 0.5 * full] },
      { label: 'D', color: '#ff8000', window: [0.2 * full, 0.9 * full] },
    ],
    sourceEncoding: 'raw-deflate-v1',
    createdAt: '2024-01-01T00:00:00.000Z',
  });
}

/** Deterministic content: gradients, a bright blob and noise, covering the whole value range. */
/** `noise` is the uniform noise amplitude as a fraction of the range (JPEG cases use less: noise is what JPEG codes worst). */
export function makeSources(dtype: DType, noise = 0.25): PixelArray[][] {
  const full = dtype === 'uint8' ? 255 : dtype === 'uint16' ? 65535 : 1;
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const out: PixelArray[][] = [];
  for (let c = 0; c < N_CHANNELS; c++) {
    const slices: PixelArray[] = [];
    for (let z = 0; z < SIZE_Z; z++) {
      const a = dtype === 'uint8' ? new Uint8Array(W * H) : dtype === 'uint16' ? new Uint16Array(W * H) : new Float32Array(W * H);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const g = ((x + c * 17 + z * 5) % W) / W;
          const blob = Math.exp(-((x - 30 - 10 * c) ** 2 + (y - 18) ** 2) / 120);
          let v = (0.6 * g + 0.5 * blob + noise * rand()) * full;
          v = Math.min(full, Math.max(0, v));
          a[y * W + x] = dtype === 'float32' ? v : Math.round(v);
        }
      }
      slices.push(a);
    }
    out.push(slices);
  }
  return out;
}

/** Per-plane statistics of the fixture (the tile stands for the whole plane). */
export function statsFor(dtype: DType, sources: PixelArray[][]): DatasetStats {
  const planes = [];
  for (let c = 0; c < sources.length; c++) {
    for (let z = 0; z < SIZE_Z; z++) {
      const s = [...(sources[c]![z] as ArrayLike<number> & Iterable<number>)].sort((a, b) => a - b);
      const percentiles: Record<string, number> = {};
      for (const f of STORED_PERCENTILES) percentiles[String(f)] = s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
      planes.push({
        c,
        z,
        t: 0,
        min: s[0]!,
        max: s[s.length - 1]!,
        mean: s.reduce((a, b) => a + b, 0) / s.length,
        percentiles,
        histogram: { lo: s[0]!, hi: s[s.length - 1]!, counts: [s.length] },
      });
    }
  }
  return { v: 1, dataset: `ref-${dtype}`, version: 1, planes };
}
