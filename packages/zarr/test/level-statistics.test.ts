import type { PixelArray } from '@tilefarm/contracts';
import { computePlaneStats } from '@tilefarm/datasets';
import { levelStatistics, openZarrImage, readTileFromChunks, statisticsLevel, zarritaLibrary, type DecodedChunk } from '@tilefarm/zarr';
import { zarrFixtures } from '../../../test/support/zarr-fixtures';
import { placeOf } from './linked-fixture';

type Axis = 't' | 'c' | 'z' | 'y' | 'x';
type Typed = Uint8Array | Uint16Array | Float32Array;

const strides = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

/**
 * An array held whole in memory, handed out chunk by chunk as a Zarr reader would: edge chunks
 * padded to the full chunk shape with `padding` (a value no plane holds: counted, it shows), every
 * read counted.
 */
function chunkedArray(shape: number[], chunks: number[], whole: Typed, padding: number) {
  const wholeStride = strides(shape);
  const chunkStride = strides(chunks);
  const n = chunks.reduce((a, b) => a * b, 1);
  const reads: string[] = [];
  return {
    reads,
    shape,
    chunks,
    async getChunk(coords: number[]): Promise<DecodedChunk> {
      reads.push(coords.join('.'));
      const data = new (whole.constructor as new (n: number) => Typed)(n);
      for (let k = 0; k < n; k++) {
        let src = 0;
        let inside = true;
        for (let i = 0; i < chunks.length; i++) {
          const at = coords[i]! * chunks[i]! + (Math.floor(k / chunkStride[i]!) % chunks[i]!);
          if (at >= shape[i]!) inside = false;
          src += at * wholeStride[i]!;
        }
        data[k] = inside ? whole[src]! : padding;
      }
      return { data: data as PixelArray, shape: chunks, stride: chunkStride };
    },
  };
}

/** Plane (t, c, z) of the whole array, read another way: sample by sample from its C-order index. */
function planeOf(axes: Axis[], shape: number[], whole: Typed, at: { t: number; c: number; z: number }): Typed {
  const s = strides(shape);
  const [h, w] = [shape[axes.indexOf('y')]!, shape[axes.indexOf('x')]!];
  const out = new (whole.constructor as new (n: number) => Typed)(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const index = axes.reduce((sum, a, i) => sum + (a === 'y' ? y : a === 'x' ? x : at[a]) * s[i]!, 0);
      out[y * w + x] = whole[index]!;
    }
  }
  return out;
}

function imageOf(axes: Axis[], shape: number[], dtype: 'uint8' | 'uint16' | 'float32') {
  const size = (a: Axis) => (axes.includes(a) ? shape[axes.indexOf(a)]! : 1);
  return { axes, dtype, sizeT: size('t'), sizeC: size('c'), sizeZ: size('z') };
}

function expectedStats(axes: Axis[], shape: number[], whole: Typed, dtype: 'uint8' | 'uint16' | 'float32') {
  const image = imageOf(axes, shape, dtype);
  const out = [];
  for (let t = 0; t < image.sizeT; t++) for (let z = 0; z < image.sizeZ; z++) for (let c = 0; c < image.sizeC; c++) out.push(computePlaneStats(planeOf(axes, shape, whole, { t, c, z }) as PixelArray, dtype, c, z, t));
  return out;
}

function filled<T extends Typed>(array: T, seed: number): T {
  let s = seed;
  for (let i = 0; i < array.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    array[i] = array instanceof Float32Array ? (s % 100_000) / 7 - 3000 : s % (array instanceof Uint8Array ? 250 : 60_000);
  }
  return array;
}

describe('levelStatistics: every plane of a level, each chunk read once', () => {
  it('deep chunks (c, z, y, x) with edge chunks cut at the level: the statistics of each plane read whole, one read per chunk', async () => {
    const axes: Axis[] = ['c', 'z', 'y', 'x'];
    const shape = [2, 10, 12, 15];
    const whole = filled(new Uint16Array(2 * 10 * 12 * 15), 7);
    const array = chunkedArray(shape, [1, 4, 5, 7], whole, 65_535);
    const progress: number[] = [];
    const stats = await levelStatistics(imageOf(axes, shape, 'uint16'), array, (n) => void progress.push(n));
    expect(stats).toEqual(expectedStats(axes, shape, whole, 'uint16'));
    // 2 channels × 3 layers in z × 3 × 3 chunks in the plane, each read once.
    expect(array.reads).toHaveLength(2 * 3 * 3 * 3);
    expect(new Set(array.reads).size).toBe(array.reads.length);
    expect(progress.reduce((a, b) => a + b, 0)).toBe(20);
  });

  it('chunks holding several channels and time points (t, c, z, y, x), uint8', async () => {
    const axes: Axis[] = ['t', 'c', 'z', 'y', 'x'];
    const shape = [2, 3, 5, 9, 8];
    const whole = filled(new Uint8Array(2 * 3 * 5 * 9 * 8), 11);
    const array = chunkedArray(shape, [2, 2, 3, 4, 8], whole, 255);
    const stats = await levelStatistics(imageOf(axes, shape, 'uint8'), array, () => undefined);
    expect(stats).toEqual(expectedStats(axes, shape, whole, 'uint8'));
    expect(array.reads).toHaveLength(1 * 2 * 2 * 3 * 1);
  });

  it('float32 planes beyond the accumulators budget: counted in groups, the chunks read once per group', async () => {
    const axes: Axis[] = ['z', 'y', 'x'];
    const shape = [6, 10, 10];
    const whole = filled(new Float32Array(6 * 10 * 10), 3);
    const array = chunkedArray(shape, [6, 8, 8], whole, Number.NaN);
    const progress: number[] = [];
    // Room for the accumulators of 2 planes of 100 samples at once: 3 groups of the slab's 6.
    const stats = await levelStatistics(imageOf(axes, shape, 'float32'), array, (n) => void progress.push(n), 2 * 100 * 16);
    const expected = expectedStats(axes, shape, whole, 'float32');
    expect(stats.map(({ mean, ...rest }) => rest)).toEqual(expected.map(({ mean, ...rest }) => rest));
    stats.forEach((s, i) => expect(s.mean).toBeCloseTo(expected[i]!.mean, 6));
    expect(progress).toEqual([2, 2, 2]);
    expect(array.reads).toHaveLength(3 * 4);
  });

  it('a Zarr written by Python zarr (NGFF 0.4, Blosc): the same statistics as its planes read tile-wise through the reader', async () => {
    const fixtures = zarrFixtures();
    const opened = await openZarrImage(placeOf(fixtures.ngff04), zarritaLibrary, 'cells-ngff04.zarr', 1e12);
    const { image, arrays } = opened;
    const level = statisticsLevel(image);
    const [height, width] = [image.levels[level]!.shape[image.axes.indexOf('y')]!, image.levels[level]!.shape[image.axes.indexOf('x')]!];
    const chunks = new Map<string, Promise<DecodedChunk>>();
    const cache = { getOrLoad: (key: string, load: () => Promise<DecodedChunk>) => chunks.get(key) ?? chunks.set(key, load()).get(key)! };
    const expected = [];
    for (let t = 0; t < image.sizeT; t++) {
      for (let z = 0; z < image.sizeZ; z++) {
        for (let c = 0; c < image.sizeC; c++) {
          const plane = await readTileFromChunks(image, arrays, { level, t, c, z, x0: 0, y0: 0, width, height }, cache, 'plane');
          expected.push(computePlaneStats(plane.data, image.dtype, c, z, t));
        }
      }
    }
    expect(expected.length).toBeGreaterThan(3);
    expect(await levelStatistics(image, arrays[level]!, () => undefined)).toEqual(expected);
  });
});
