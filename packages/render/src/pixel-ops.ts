/**
 * The per-pixel arithmetic, as tight loops over typed arrays (no allocation inside).
 *
 * Per channel:  n = (v - lo) / (hi - lo) clamped to [0, 1]  (lo == hi: 0 below lo, 1 at or above)
 *               n = n^gamma;  n = 1 - n if inverted
 * then either   contribution = n * colour            (colour components 0..255)
 * or            contribution = lut[round(n * 255)]    (nearest of the 256 entries)
 * composited per RGB component into a Float32 accumulator by clamped sum (add) or max, and
 * finally rounded to 8 bits. Non-finite samples (float32 sources) have n = 0.
 */

export function normalize(v: number, lo: number, hi: number, gamma: number, invert: boolean): number {
  let n: number;
  if (hi > lo) {
    n = (v - lo) / (hi - lo);
    n = n > 0 ? (n < 1 ? n : 1) : 0;
  } else {
    n = v >= lo ? 1 : 0;
  }
  if (gamma !== 1) n = Math.pow(n, gamma);
  return invert ? 1 - n : n;
}

export function lutIndexOf(n: number): number {
  return Math.floor(n * 255 + 0.5);
}

export interface ChannelLevels {
  lo: number;
  hi: number;
  gamma: number;
  invert: boolean;
}

/**
 * For integer sources: n (or the LUT index) for every possible sample value, so the per-pixel
 * work is one lookup whatever the gamma. 65536 entries for uint16; cached by the caller.
 */
export function levelsTable(maxValue: number, l: ChannelLevels, lutIndex: boolean): Float32Array | Uint8Array {
  const size = maxValue + 1;
  const out = lutIndex ? new Uint8Array(size) : new Float32Array(size);
  for (let v = 0; v < size; v++) {
    const n = normalize(v, l.lo, l.hi, l.gamma, l.invert);
    out[v] = lutIndex ? lutIndexOf(n) : n;
  }
  return out;
}

/** out[i] = table[src[i]] for integer samples (n as Float32, or a LUT index). */
export function lookupLevels(src: Uint8Array | Uint16Array, table: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = table[src[i] as number] as number;
}
export function lookupIndex(src: Uint8Array | Uint16Array, table: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) out[i] = table[src[i] as number] as number;
}

/** n per pixel for float samples (projections, formulas, float32 sources). */
export function computeLevels(src: Float32Array | Float64Array, l: ChannelLevels, out: Float32Array): void {
  const { lo, hi, gamma, invert } = l;
  for (let i = 0; i < out.length; i++) out[i] = normalize(src[i] as number, lo, hi, gamma, invert);
}
export function computeIndex(src: Float32Array | Float64Array, l: ChannelLevels, out: Uint8Array): void {
  const { lo, hi, gamma, invert } = l;
  for (let i = 0; i < out.length; i++) out[i] = lutIndexOf(normalize(src[i] as number, lo, hi, gamma, invert));
}

/** acc (r,g,b interleaved, 0..255 scale) += or max= n * colour. */
export function paintColor(n: Float32Array, rgb: readonly [number, number, number], mode: 'add' | 'max', acc: Float32Array): void {
  const [r, g, b] = rgb;
  const len = n.length;
  if (mode === 'add') {
    for (let i = 0, j = 0; i < len; i++, j += 3) {
      const x = n[i] as number;
      acc[j] = (acc[j] as number) + x * r;
      acc[j + 1] = (acc[j + 1] as number) + x * g;
      acc[j + 2] = (acc[j + 2] as number) + x * b;
    }
  } else {
    for (let i = 0, j = 0; i < len; i++, j += 3) {
      const x = n[i] as number;
      const cr = x * r;
      const cg = x * g;
      const cb = x * b;
      if (cr > (acc[j] as number)) acc[j] = cr;
      if (cg > (acc[j + 1] as number)) acc[j + 1] = cg;
      if (cb > (acc[j + 2] as number)) acc[j + 2] = cb;
    }
  }
}

/** acc += or max= lut[index]. */
export function paintLut(index: Uint8Array, table: Uint8Array, mode: 'add' | 'max', acc: Float32Array): void {
  const len = index.length;
  if (mode === 'add') {
    for (let i = 0, j = 0; i < len; i++, j += 3) {
      const k = (index[i] as number) * 3;
      acc[j] = (acc[j] as number) + (table[k] as number);
      acc[j + 1] = (acc[j + 1] as number) + (table[k + 1] as number);
      acc[j + 2] = (acc[j + 2] as number) + (table[k + 2] as number);
    }
  } else {
    for (let i = 0, j = 0; i < len; i++, j += 3) {
      const k = (index[i] as number) * 3;
      const cr = table[k] as number;
      const cg = table[k + 1] as number;
      const cb = table[k + 2] as number;
      if (cr > (acc[j] as number)) acc[j] = cr;
      if (cg > (acc[j + 1] as number)) acc[j + 1] = cg;
      if (cb > (acc[j + 2] as number)) acc[j + 2] = cb;
    }
  }
}

/** Clamp and round the accumulator to 8 bits (the clamp is the "clamped sum" of add). */
export function toRgb8(acc: Float32Array, out: Uint8Array): void {
  for (let j = 0; j < acc.length; j++) {
    const v = acc[j] as number;
    out[j] = v >= 255 ? 255 : (v + 0.5) | 0;
  }
}

/** Z projection, folded slice by slice as reads arrive (order-independent for max and integer sums). */
export function foldMax(acc: Uint8Array | Uint16Array | Float32Array, slice: ArrayLike<number>): void {
  for (let i = 0; i < acc.length; i++) {
    const v = slice[i] as number;
    if (v > (acc[i] as number)) acc[i] = v;
  }
}
export function foldSum(acc: Float64Array, slice: ArrayLike<number>): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (slice[i] as number);
}
/** Mean = sum / count (a division, not a multiply by 1/count, so it rounds like v/n would). */
export function divideBy(acc: Float64Array, d: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) / d;
}

/**
 * Fast path for the common case: 1-3 colour channels from integer sources. One pass reads each
 * channel's samples through its levels table and writes finished 8-bit RGB: no accumulator array,
 * no second pass. (Measured: the generic path's extra passes cost more than the encoder itself.)
 */
type Int = Uint8Array | Uint16Array;
type Rgb = readonly [number, number, number];

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function to8(v: number): number {
  return v >= 255 ? 255 : (v + 0.5) | 0;
}

export function fusedColor1(a: Int, ta: Float32Array, ca: Rgb, out: Uint8Array): void {
  const [ar, ag, ab] = ca;
  for (let i = 0, j = 0; i < a.length; i++, j += 3) {
    const x = ta[a[i] as number] as number;
    out[j] = to8(x * ar);
    out[j + 1] = to8(x * ag);
    out[j + 2] = to8(x * ab);
  }
}

export function fusedColor2(mode: 'add' | 'max', a: Int, ta: Float32Array, ca: Rgb, b: Int, tb: Float32Array, cb: Rgb, out: Uint8Array): void {
  const [ar, ag, ab] = ca;
  const [br, bg, bb] = cb;
  const n = a.length;
  let i = 0;
  if (mode === 'add' && LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
    // As in fusedColor3: four pixels as three 32-bit words, the same bytes as to8.
    const o32 = new Uint32Array(out.buffer, out.byteOffset, (n >> 2) * 3);
    for (let w = 0; i + 3 < n; i += 4, w += 3) {
      let x = ta[a[i] as number] as number;
      let y = tb[b[i] as number] as number;
      let r0 = (x * ar + y * br + 0.5) | 0;
      let g0 = (x * ag + y * bg + 0.5) | 0;
      let b0 = (x * ab + y * bb + 0.5) | 0;
      x = ta[a[i + 1] as number] as number;
      y = tb[b[i + 1] as number] as number;
      let r1 = (x * ar + y * br + 0.5) | 0;
      let g1 = (x * ag + y * bg + 0.5) | 0;
      let b1 = (x * ab + y * bb + 0.5) | 0;
      x = ta[a[i + 2] as number] as number;
      y = tb[b[i + 2] as number] as number;
      let r2 = (x * ar + y * br + 0.5) | 0;
      let g2 = (x * ag + y * bg + 0.5) | 0;
      let b2 = (x * ab + y * bb + 0.5) | 0;
      x = ta[a[i + 3] as number] as number;
      y = tb[b[i + 3] as number] as number;
      let r3 = (x * ar + y * br + 0.5) | 0;
      let g3 = (x * ag + y * bg + 0.5) | 0;
      let b3 = (x * ab + y * bb + 0.5) | 0;
      if (r0 > 255) r0 = 255;
      if (g0 > 255) g0 = 255;
      if (b0 > 255) b0 = 255;
      if (r1 > 255) r1 = 255;
      if (g1 > 255) g1 = 255;
      if (b1 > 255) b1 = 255;
      if (r2 > 255) r2 = 255;
      if (g2 > 255) g2 = 255;
      if (b2 > 255) b2 = 255;
      if (r3 > 255) r3 = 255;
      if (g3 > 255) g3 = 255;
      if (b3 > 255) b3 = 255;
      o32[w] = r0 | (g0 << 8) | (b0 << 16) | (r1 << 24);
      o32[w + 1] = g1 | (b1 << 8) | (r2 << 16) | (g2 << 24);
      o32[w + 2] = b2 | (r3 << 8) | (g3 << 16) | (b3 << 24);
    }
  }
  if (mode === 'add') {
    for (let j = i * 3; i < n; i++, j += 3) {
      const x = ta[a[i] as number] as number;
      const y = tb[b[i] as number] as number;
      out[j] = to8(x * ar + y * br);
      out[j + 1] = to8(x * ag + y * bg);
      out[j + 2] = to8(x * ab + y * bb);
    }
  } else {
    for (let j = i * 3; i < n; i++, j += 3) {
      const x = ta[a[i] as number] as number;
      const y = tb[b[i] as number] as number;
      out[j] = to8(Math.max(x * ar, y * br));
      out[j + 1] = to8(Math.max(x * ag, y * bg));
      out[j + 2] = to8(Math.max(x * ab, y * bb));
    }
  }
}

export function fusedColor3(
  mode: 'add' | 'max',
  a: Int,
  ta: Float32Array,
  ca: Rgb,
  b: Int,
  tb: Float32Array,
  cb: Rgb,
  c: Int,
  tc: Float32Array,
  cc: Rgb,
  out: Uint8Array,
): void {
  const [ar, ag, ab] = ca;
  const [br, bg, bb] = cb;
  const [cr, cg, cbl] = cc;
  const n = a.length;
  let i = 0;
  if (mode === 'add' && LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
    // Four pixels per iteration, written as three 32-bit words, and the rounding as an integer
    // truncation with an integer clamp (the same bytes as to8: (v + 0.5) | 0 is at most 766):
    // measured ~2x faster than byte stores through to8 on a 256² tile.
    const o32 = new Uint32Array(out.buffer, out.byteOffset, (n >> 2) * 3);
    for (let w = 0; i + 3 < n; i += 4, w += 3) {
      let x = ta[a[i] as number] as number;
      let y = tb[b[i] as number] as number;
      let z = tc[c[i] as number] as number;
      let r0 = (x * ar + y * br + z * cr + 0.5) | 0;
      let g0 = (x * ag + y * bg + z * cg + 0.5) | 0;
      let b0 = (x * ab + y * bb + z * cbl + 0.5) | 0;
      x = ta[a[i + 1] as number] as number;
      y = tb[b[i + 1] as number] as number;
      z = tc[c[i + 1] as number] as number;
      let r1 = (x * ar + y * br + z * cr + 0.5) | 0;
      let g1 = (x * ag + y * bg + z * cg + 0.5) | 0;
      let b1 = (x * ab + y * bb + z * cbl + 0.5) | 0;
      x = ta[a[i + 2] as number] as number;
      y = tb[b[i + 2] as number] as number;
      z = tc[c[i + 2] as number] as number;
      let r2 = (x * ar + y * br + z * cr + 0.5) | 0;
      let g2 = (x * ag + y * bg + z * cg + 0.5) | 0;
      let b2 = (x * ab + y * bb + z * cbl + 0.5) | 0;
      x = ta[a[i + 3] as number] as number;
      y = tb[b[i + 3] as number] as number;
      z = tc[c[i + 3] as number] as number;
      let r3 = (x * ar + y * br + z * cr + 0.5) | 0;
      let g3 = (x * ag + y * bg + z * cg + 0.5) | 0;
      let b3 = (x * ab + y * bb + z * cbl + 0.5) | 0;
      if (r0 > 255) r0 = 255;
      if (g0 > 255) g0 = 255;
      if (b0 > 255) b0 = 255;
      if (r1 > 255) r1 = 255;
      if (g1 > 255) g1 = 255;
      if (b1 > 255) b1 = 255;
      if (r2 > 255) r2 = 255;
      if (g2 > 255) g2 = 255;
      if (b2 > 255) b2 = 255;
      if (r3 > 255) r3 = 255;
      if (g3 > 255) g3 = 255;
      if (b3 > 255) b3 = 255;
      o32[w] = r0 | (g0 << 8) | (b0 << 16) | (r1 << 24);
      o32[w + 1] = g1 | (b1 << 8) | (r2 << 16) | (g2 << 24);
      o32[w + 2] = b2 | (r3 << 8) | (g3 << 16) | (b3 << 24);
    }
  }
  if (mode === 'add') {
    for (let j = i * 3; i < n; i++, j += 3) {
      const x = ta[a[i] as number] as number;
      const y = tb[b[i] as number] as number;
      const z = tc[c[i] as number] as number;
      out[j] = to8(x * ar + y * br + z * cr);
      out[j + 1] = to8(x * ag + y * bg + z * cg);
      out[j + 2] = to8(x * ab + y * bb + z * cbl);
    }
  } else {
    for (let j = i * 3; i < n; i++, j += 3) {
      const x = ta[a[i] as number] as number;
      const y = tb[b[i] as number] as number;
      const z = tc[c[i] as number] as number;
      out[j] = to8(Math.max(x * ar, y * br, z * cr));
      out[j + 1] = to8(Math.max(x * ag, y * bg, z * cg));
      out[j + 2] = to8(Math.max(x * ab, y * bb, z * cbl));
    }
  }
}

/**
 * Fastest path: when every RGB component receives at most one channel (pure or single colours,
 * the usual blue/green/red... setups), the component's final byte depends on one sample only, so
 * a per-value table of finished bytes is exact (one rounding, like the generic path).
 */
export function levelsByteTable(maxValue: number, l: ChannelLevels, component: number): Uint8Array {
  const out = new Uint8Array(maxValue + 1);
  for (let v = 0; v <= maxValue; v++) out[v] = to8(normalize(v, l.lo, l.hi, l.gamma, l.invert) * component);
  return out;
}

/** Shared all-zero table for components no channel paints (keeps the packed loop branch-free). */
export const ZERO_BYTE_TABLE = new Uint8Array(65536);

/**
 * out[3i + k] = table_k[src_k[i]] for k = r, g, b. Four pixels (12 bytes) per iteration are
 * written as three 32-bit words: measured ~1.7x faster than byte stores. `out` must start 4-byte
 * aligned (a fresh buffer does).
 */
export function writeRgbTables(r: Int, tr: Uint8Array, g: Int, tg: Uint8Array, b: Int, tb: Uint8Array, out: Uint8Array): void {
  const n = r.length;
  let i = 0;
  if (LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
    const o32 = new Uint32Array(out.buffer, out.byteOffset, (n >> 2) * 3);
    for (let w = 0; i + 3 < n; i += 4, w += 3) {
      const r0 = tr[r[i] as number] as number;
      const g0 = tg[g[i] as number] as number;
      const b0 = tb[b[i] as number] as number;
      const r1 = tr[r[i + 1] as number] as number;
      const g1 = tg[g[i + 1] as number] as number;
      const b1 = tb[b[i + 1] as number] as number;
      const r2 = tr[r[i + 2] as number] as number;
      const g2 = tg[g[i + 2] as number] as number;
      const b2 = tb[b[i + 2] as number] as number;
      const r3 = tr[r[i + 3] as number] as number;
      const g3 = tg[g[i + 3] as number] as number;
      const b3 = tb[b[i + 3] as number] as number;
      o32[w] = r0 | (g0 << 8) | (b0 << 16) | (r1 << 24);
      o32[w + 1] = g1 | (b1 << 8) | (r2 << 16) | (g2 << 24);
      o32[w + 2] = b2 | (r3 << 8) | (g3 << 16) | (b3 << 24);
    }
  }
  for (let j = i * 3; i < n; i++, j += 3) {
    out[j] = tr[r[i] as number] as number;
    out[j + 1] = tg[g[i] as number] as number;
    out[j + 2] = tb[b[i] as number] as number;
  }
}

/** Samples of any source type: the arrays a tile is assembled from (copyRows). */
export type RowSamples = Uint8Array | Uint16Array | Int16Array | Uint32Array | Float32Array;

function wholeCount(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 2 ** 32;
}

function rowsInside(offset: number, stride: number, width: number, rows: number, length: number): boolean {
  return rows === 0 || width === 0 || offset + (rows - 1) * stride + width <= length;
}

/**
 * `rows` rows of `width` samples from src (starting at srcOffset, srcStride apart) to dst (dstOffset,
 * dstStride apart), arrays of one kind. Checked as the C kernel checks them, so both refuse the same calls.
 */
export function copyRows(dst: RowSamples, dstOffset: number, dstStride: number, src: RowSamples, srcOffset: number, srcStride: number, width: number, rows: number): void {
  if (![dstOffset, dstStride, srcOffset, srcStride, width, rows].every(wholeCount)) throw new RangeError('copyRows: offsets, strides, width and rows must be whole numbers within 0..2^32');
  if (!ArrayBuffer.isView(dst) || !ArrayBuffer.isView(src)) throw new TypeError('copyRows: dst and src must be typed arrays');
  if (dst.constructor !== src.constructor) throw new TypeError('copyRows: dst and src must be typed arrays of one kind');
  if (!rowsInside(dstOffset, dstStride, width, rows, dst.length)) throw new RangeError('copyRows: the rows do not lie inside dst');
  if (!rowsInside(srcOffset, srcStride, width, rows, src.length)) throw new RangeError('copyRows: the rows do not lie inside src');
  if (width === 0) return;
  for (let r = 0; r < rows; r++) {
    const from = srcOffset + r * srcStride;
    dst.set(src.subarray(from, from + width) as never, dstOffset + r * dstStride);
  }
}
