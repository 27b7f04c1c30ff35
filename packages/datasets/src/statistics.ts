import { STORED_PERCENTILES, type DType, type PixelArray, type PlaneStats } from '@tilefarm/contracts';

const HISTOGRAM_BINS = 256;

/**
 * Accumulates statistics of one channel plane, fed in pieces (strips or tiles) so an ingest never
 * needs the whole plane at once. Integer types are counted exactly (one counter per value);
 * float32 keeps a 4096-bin histogram over the running range, precise enough for windows.
 */
export class PlaneStatsAccumulator {
  private readonly counts: Uint32Array | undefined;
  private readonly floats: number[] = [];
  private min = Infinity;
  private max = -Infinity;
  private sum = 0;
  private n = 0;

  constructor(private readonly dtype: DType) {
    this.counts = dtype === 'uint8' ? new Uint32Array(256) : dtype === 'uint16' ? new Uint32Array(65536) : undefined;
  }

  add(data: PixelArray): void {
    this.addRows(data, 0, data.length, 1, data.length, 1);
  }

  /**
   * `rows` rows of `width` samples of `data` from `start`, rows `rowStride` apart and samples
   * `colStride` apart: a plane's part of a chunk, counted where it lies (no copy of it first).
   */
  addRows(data: ArrayLike<number>, start: number, rowStride: number, colStride: number, width: number, rows: number): void {
    const counts = this.counts;
    let min = this.min;
    let max = this.max;
    let sum = 0;
    for (let r = 0; r < rows; r++) {
      const from = start + r * rowStride;
      for (let i = from, end = from + width * colStride; i < end; i += colStride) {
        const v = data[i]!;
        if (counts) counts[v]!++;
        else if (Number.isFinite(v)) this.floats.push(v);
        if (v < min) min = v;
        if (v > max) max = v;
        sum += v;
      }
    }
    this.min = min;
    this.max = max;
    this.sum += sum;
    this.n += width * rows;
  }

  /** Bytes this accumulator holds once fed `samples` samples (a budget for how many to keep at once). */
  static bytesFor(dtype: DType, samples: number): number {
    return dtype === 'uint8' ? 1024 : dtype === 'uint16' ? 262_144 : samples * 16; // float: every sample, as a double in a growing array
  }

  finish(c: number, z: number, t: number): PlaneStats {
    if (this.n === 0) throw new Error('no pixels');
    const percentiles: Record<string, number> = {};
    const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
    const lo = this.min;
    const hi = this.max;
    const binOf = (v: number) => (hi > lo ? Math.min(HISTOGRAM_BINS - 1, Math.floor(((v - lo) / (hi - lo)) * HISTOGRAM_BINS)) : 0);
    if (this.counts) {
      const counts = this.counts;
      const targets = STORED_PERCENTILES.map((p) => ({ p, rank: Math.min(this.n - 1, Math.floor(p * (this.n - 1))) }));
      let seen = 0;
      let next = 0;
      for (let v = lo; v <= hi; v++) {
        const k = counts[v]!;
        if (k === 0) continue;
        histogram[binOf(v)]! += k;
        while (next < targets.length && targets[next]!.rank < seen + k) {
          percentiles[String(targets[next]!.p)] = v;
          next++;
        }
        seen += k;
      }
    } else {
      const sorted = Float64Array.from(this.floats).sort();
      for (const p of STORED_PERCENTILES) percentiles[String(p)] = sorted[Math.floor(p * (sorted.length - 1))] ?? 0;
      for (const v of sorted) histogram[binOf(v)]!++;
    }
    return { c, z, t, min: lo, max: hi, mean: this.sum / this.n, percentiles, histogram: { lo, hi, counts: histogram } };
  }
}

export function computePlaneStats(data: PixelArray, dtype: DType, c: number, z: number, t: number): PlaneStats {
  const acc = new PlaneStatsAccumulator(dtype);
  acc.add(data);
  return acc.finish(c, z, t);
}
