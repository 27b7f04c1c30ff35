import { javascriptPixelKernels, nativePixelKernels, type PixelKernels } from '../src/pixel-kernels';
import type { RowSamples } from '../src/pixel-ops';

/** The per-pixel rule of pixel-ops.ts, written plainly: every kernel must give exactly these bytes. */
function to8(v: number): number {
  return v >= 255 ? 255 : (v + 0.5) | 0;
}
type Samples = Uint8Array | Uint16Array;
type Rgb = [number, number, number];
function reference(mode: 'add' | 'max', src: Samples[], tables: Float32Array[], rgb: Rgb[], n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const parts = src.map((s, c) => (tables[c] as Float32Array)[s[i] as number]! * rgb[c]![k]!);
      out[i * 3 + k] = to8(mode === 'add' ? parts.reduce((a, b) => a + b) : Math.max(...parts));
    }
  }
  return out;
}

/** n for every sample value, as the renderer's levels tables: window, gamma, inversion. */
function levels(size: number, lo: number, hi: number, gamma = 1, invert = false): Float32Array {
  const t = new Float32Array(size);
  for (let v = 0; v < t.length; v++) {
    const n = Math.min(1, Math.max(0, (v - lo) / (hi - lo))) ** gamma;
    t[v] = invert ? 1 - n : n;
  }
  return t;
}

function seeded(seed: number, range: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) >>> 0) % range;
}

const native = nativePixelKernels();
/** The native kernels must be built on every machine the tests run on: the next test fails, saying why, when they are not. */
const KERNELS: [string, PixelKernels][] = [['javascript', javascriptPixelKernels], ...('error' in native ? [] : [['native', native] as [string, PixelKernels]])];

it('the native kernels are built and load', () => {
  expect('error' in native ? native.error : 'loaded').toBe('loaded');
});

describe.each(KERNELS)('%s kernels', (_name, kernels) => {
  // Windows and colours where sums pass 255 (the clamp) and land on .5 (the rounding).
  const tables16 = [levels(65536, 90, 2600), levels(65536, 0, 510), levels(65536, 100, 2200, 0.6, true)];
  const tables8 = [levels(256, 10, 200), levels(256, 0, 255, 1.7), levels(256, 30, 90)];
  const rgb: Rgb[] = [
    [0, 128, 255],
    [0, 255, 0],
    [255, 255, 0],
  ];

  it.each([
    ['add', 3, 65536, 0, 16],
    ['add', 3, 1003, 0, 16], // a tail after the JavaScript's 4-pixel groups
    ['add', 3, 1003, 1, 16], // output not 4-byte aligned: the JavaScript stores bytes
    ['max', 3, 1003, 0, 16],
    ['add', 2, 65536, 0, 16],
    ['add', 2, 1001, 1, 16],
    ['max', 2, 1001, 0, 16],
    ['add', 1, 4099, 0, 16],
    ['add', 3, 4099, 0, 8],
    ['max', 2, 4099, 0, 8],
    ['add', 1, 4099, 0, 8],
  ] as const)('fusedColor, %s of %i channels, %i pixels, output at offset %i, uint%i: the same bytes as the plain rule', (mode, channels, n, offset, bits) => {
    const random = seeded(7 + n + channels, bits === 16 ? 3200 : 256);
    const src: Samples[] = Array.from({ length: channels }, () => (bits === 16 ? Uint16Array.from({ length: n }, random) : Uint8Array.from({ length: n }, random)));
    if (channels > 1) src[1]![0] = 255; // exactly .5 of a colour step in uint16's second table: 127.5 -> 128
    src[0]![1] = bits === 16 ? 65535 : 255; // the tables' last entries
    const tables = (bits === 16 ? tables16 : tables8).slice(0, channels);
    const colours = rgb.slice(0, channels);
    const out = new Uint8Array(n * 3 + offset).subarray(offset);
    const [a, b, c] = src as Samples[];
    const [ta, tb, tc] = tables as Float32Array[];
    const [ca, cb, cc] = colours as Rgb[];
    if (channels === 3) kernels.fusedColor3(mode, a!, ta!, ca!, b!, tb!, cb!, c!, tc!, cc!, out);
    else if (channels === 2) kernels.fusedColor2(mode, a!, ta!, ca!, b!, tb!, cb!, out);
    else kernels.fusedColor1(a!, ta!, ca!, out);
    expect(Buffer.from(out).equals(Buffer.from(reference(mode, src, tables, colours, n)))).toBe(true);
    if (channels > 1) expect(out.some((v) => v === 255)).toBe(true);
  });

  it.each([16, 8] as const)('writeRgbTables, uint%i: each component through its own byte table', (bits) => {
    const n = 3001;
    const size = bits === 16 ? 65536 : 256;
    const random = seeded(3, size);
    const src: Samples[] = [0, 1, 2].map(() => (bits === 16 ? Uint16Array.from({ length: n }, random) : Uint8Array.from({ length: n }, random)));
    const tables = [0, 1, 2].map((k) => Uint8Array.from({ length: size }, (_, v) => (v * (k + 3) + k) & 255));
    const out = new Uint8Array(n * 3);
    kernels.writeRgbTables(src[0]!, tables[0]!, src[1]!, tables[1]!, src[2]!, tables[2]!, out);
    const expected = Uint8Array.from({ length: n * 3 }, (_, j) => tables[j % 3]![src[j % 3]![Math.floor(j / 3)]!]!);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
  });

  /** copyRows' rule, element by element: what a tile assembled from a chunk must hold. */
  function copiedRows<T extends RowSamples>(dst: T, dstOffset: number, dstStride: number, src: T, srcOffset: number, srcStride: number, width: number, rows: number): T {
    const expected = dst.slice() as T;
    for (let r = 0; r < rows; r++) for (let x = 0; x < width; x++) expected[dstOffset + r * dstStride + x] = src[srcOffset + r * srcStride + x]!;
    return expected;
  }
  const kinds = [Uint16Array, Uint8Array, Int16Array, Uint32Array, Float32Array] as const;

  it.each(kinds.map((Kind) => [Kind.name, Kind] as const))('copyRows, %s: a 64×64 chunk corner into a 256² tile, row by row', (_name, Kind) => {
    const random = seeded(11, 60_000);
    // A 64³ chunk's plane 37 (rows of 64), its last 50 rows and 40 columns into the tile at (200, 7).
    const chunk = new Kind(64 * 64 * 64);
    for (let i = 0; i < chunk.length; i++) chunk[i] = random() - (Kind === Int16Array ? 30_000 : 0) + (Kind === Float32Array ? 0.25 : 0);
    const tile = new Kind(256 * 256).fill(9);
    const args = [7 * 256 + 200, 256, 37 * 64 * 64 + 14 * 64 + 24, 64, 40, 50] as const;
    const expected = copiedRows(tile, args[0], args[1], chunk, args[2], args[3], args[4], args[5]);
    kernels.copyRows(tile, args[0], args[1], chunk, args[2], args[3], args[4], args[5]);
    expect(Buffer.from(tile.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(tile[7 * 256 + 199]).toBe(9);
    expect(tile[7 * 256 + 240]).toBe(9);
  });

  it('copyRows: views at an offset in their buffers, and empty copies that touch nothing', () => {
    const src = Uint16Array.from({ length: 300 }, (_, i) => i).subarray(17);
    const dst = new Uint16Array(400).subarray(3);
    const expected = copiedRows(dst, 5, 30, src, 2, 20, 9, 10);
    kernels.copyRows(dst, 5, 30, src, 2, 20, 9, 10);
    expect(Array.from(dst)).toEqual(Array.from(expected));
    const before = dst.slice();
    kernels.copyRows(dst, 0, 0, src, 0, 0, 0, 1000);
    kernels.copyRows(dst, 397, 1, src, 283, 1, 5, 0);
    expect(Array.from(dst)).toEqual(Array.from(before));
  });
});

describe('native kernels refuse what would read or write out of bounds', () => {
  const kernels = 'error' in native ? javascriptPixelKernels : native;
  const a = new Uint16Array(64);
  const table = new Float32Array(65536);
  const out = new Uint8Array(64 * 3);
  const bytes = new Uint8Array(65536);

  it.each([
    ['a table shorter than the samples can index', () => kernels.fusedColor1(a, table.subarray(0, 4096), [255, 255, 255], out), 'each table must be a Float32Array covering every sample value'],
    ['a uint8 table for uint16 samples', () => kernels.writeRgbTables(a, bytes.subarray(0, 256), a, bytes, a, bytes, out), 'each table must be a Uint8Array covering every sample value'],
    ['an output too short', () => kernels.fusedColor1(a, table, [255, 255, 255], out.subarray(1)), 'out must hold 3 bytes per pixel'],
    ['channels of different lengths', () => kernels.fusedColor2('add', a, table, [255, 0, 0], a.subarray(1), table, [0, 255, 0], out), 'all of one length'],
    ['an empty first channel and a longer second', () => kernels.fusedColor2('add', a.subarray(0, 0), table, [255, 0, 0], a, table, [0, 255, 0], out), 'all of one length'],
    ['an empty first component and longer others', () => kernels.writeRgbTables(a.subarray(0, 0), bytes, a, bytes, a, bytes, out), 'all of one length'],
    ['float samples', () => kernels.fusedColor1(new Float32Array(64) as unknown as Uint16Array, table, [255, 255, 255], out), 'samples must be a Uint8Array or Uint16Array'],
    ['a colour beyond 255', () => kernels.fusedColor1(a, table, [256, 0, 0], out), 'each colour must be [r, g, b] within 0..255'],
    ['an unknown mode', () => kernels.fusedColor2('sum' as 'add', a, table, [255, 0, 0], a, table, [0, 255, 0], out), "mode must be 'add' or 'max'"],
    ['a mode that only begins like one', () => kernels.fusedColor2('added' as 'add', a, table, [255, 0, 0], a, table, [0, 255, 0], out), "mode must be 'add' or 'max'"],
  ])('%s', (_what, call, message) => {
    expect(kernels.implementation).toBe('native');
    expect(call).toThrow(message);
  });
});

describe.each(KERNELS)('%s copyRows refuses rows outside its arrays', (_name, kernels) => {
  const a = new Uint16Array(64);
  it.each([
    ['rows copied between arrays of two kinds', () => kernels.copyRows(a, 0, 8, new Int16Array(64), 0, 8, 8, 8), 'typed arrays of one kind'],
    ['rows copied from something not a typed array', () => kernels.copyRows(a, 0, 8, [1, 2, 3] as unknown as Uint16Array, 0, 8, 8, 8), 'must be typed arrays'],
    ['a last row past the end of dst', () => kernels.copyRows(a, 1, 8, new Uint16Array(128), 0, 8, 8, 8), 'the rows do not lie inside dst'],
    ['a last row past the end of src', () => kernels.copyRows(new Uint16Array(128), 0, 8, a, 0, 9, 8, 8), 'the rows do not lie inside src'],
    ['a negative offset', () => kernels.copyRows(a, -1, 8, a, 0, 8, 8, 1), 'whole numbers within 0..2^32'],
    ['a fractional stride', () => kernels.copyRows(a, 0, 8.5, a, 0, 8, 8, 1), 'whole numbers within 0..2^32'],
    ['a count beyond 2^32', () => kernels.copyRows(a, 0, 8, a, 0, 8, 2 ** 33, 1), 'whole numbers within 0..2^32'],
    ['a huge stride that would wrap around', () => kernels.copyRows(a, 0, 2 ** 32, a, 0, 8, 8, 2), 'the rows do not lie inside dst'],
  ])('%s', (_what, call, message) => {
    expect(call).toThrow(message);
    expect(a.every((v) => v === 0)).toBe(true);
  });
});
