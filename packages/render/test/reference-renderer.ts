/**
 * A deliberately plain second implementation of the render pipeline, for tests only: per-pixel
 * loops, doubles everywhere, no sharp, nothing imported from the engine (contracts types only).
 * Formulas are given as hand-written JS lambdas next to each case, not parsed. LUTs are passed in
 * as data (the tables themselves are checked against published anchor colours separately).
 */
import type { DatasetManifest, DatasetStats, RenderSpec } from '@tilefarm/contracts';

export type Sample = (c: number, z: number, i: number) => number;
export type FormulaFn = (ch: (c: number) => number) => number;

export interface RefInput {
  manifest: DatasetManifest;
  stats: DatasetStats | undefined;
  spec: RenderSpec;
  z: number;
  t: number;
  width: number;
  height: number;
  /** Sample i of channel c, slice z (t fixed). */
  sample: Sample;
  /** Lambda per spec channel index that has a formula. */
  formulas?: Record<number, FormulaFn>;
  /** Expected auto window per spec channel index for formula channels (computed by hand in the test). */
  formulaWindows?: Record<number, [number, number]>;
  luts: Record<string, Uint8Array>;
}

const FULL: Record<string, number> = { uint8: 255, uint16: 65535, float32: 1 };

/** Non-finite results are 0 in the formula language. */
export const fin = (x: number): number => (Number.isFinite(x) ? x : 0);

function plane(stats: DatasetStats | undefined, c: number, z: number, t: number) {
  return stats?.planes.find((p) => p.c === c && p.z === z && p.t === t);
}

function refAutoWindow(inp: RefInput, c: number, trim: number): [number, number] {
  const zs: number[] = [];
  const pr = inp.spec.projection;
  if (pr) for (let z = pr.z[0]; z <= Math.min(pr.z[1], inp.manifest.sizeZ - 1); z++) zs.push(z);
  else zs.push(inp.z);
  const per: [number, number][] = [];
  for (const z of zs) {
    const p = plane(inp.stats, c, z, inp.t);
    if (!p) {
      const full = FULL[inp.manifest.dtype] as number;
      return [0, pr?.type === 'sum' ? full * zs.length : full];
    }
    if (trim === 0) per.push([p.min, p.max]);
    else per.push([p.percentiles[String(trim)] as number, p.percentiles[String(1 - trim)] as number]);
  }
  if (!pr) return per[0] as [number, number];
  if (pr.type === 'max') return [Math.max(...per.map((w) => w[0])), Math.max(...per.map((w) => w[1]))];
  const lo = per.reduce((s, w) => s + w[0], 0);
  const hi = per.reduce((s, w) => s + w[1], 0);
  return pr.type === 'sum' ? [lo, hi] : [lo / per.length, hi / per.length];
}

export function referenceRender(inp: RefInput): Uint8Array {
  const { manifest, spec, width, height } = inp;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const pr = spec.projection;
  const zs: number[] = [];
  if (pr) for (let z = pr.z[0]; z <= Math.min(pr.z[1], manifest.sizeZ - 1); z++) zs.push(z);

  const value = (c: number, i: number): number => {
    if (!pr) return inp.sample(c, inp.z, i);
    let acc = pr.type === 'max' ? inp.sample(c, zs[0] as number, i) : 0;
    for (const z of zs) {
      const v = inp.sample(c, z, i);
      if (pr.type === 'max') acc = Math.max(acc, v);
      else acc += v;
    }
    return pr.type === 'mean' ? acc / zs.length : acc;
  };

  // Per channel: how it gets its value, window and paint.
  const chans = spec.channels.map((c, k) => {
    let src: number | undefined;
    if (c.index !== undefined) src = c.index;
    if (c.label !== undefined) src = manifest.channels.findIndex((m) => m.label === c.label);
    let window = c.window ?? (src !== undefined ? manifest.channels[src]!.window : 'auto');
    let win: [number, number];
    if (typeof window === 'string') {
      const trim = window === 'auto' ? 0 : Number(window.slice(5));
      if (src !== undefined) win = refAutoWindow(inp, src, trim);
      else win = inp.formulaWindows![k]!;
    } else {
      win = window;
    }
    const hex = c.color ?? (src !== undefined ? manifest.channels[src]!.color : '#ffffff');
    const rgb = [1, 3, 5].map((o) => parseInt(hex.slice(o, o + 2), 16));
    return { c, src, win, rgb, lut: c.lut ? inp.luts[c.lut] : undefined, formula: inp.formulas?.[k] };
  });

  for (let i = 0; i < n; i++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (const ch of chans) {
      if (!ch.c.active) continue;
      const v = ch.src !== undefined ? value(ch.src, i) : ch.formula!((c) => fin(value(c, i)));
      const [lo, hi] = ch.win;
      let x: number;
      if (lo === hi) x = v >= lo ? 1 : 0;
      else x = Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
      x = Math.pow(x, ch.c.gamma);
      if (ch.c.invert) x = 1 - x;
      let cr: number;
      let cg: number;
      let cb: number;
      if (ch.lut) {
        const k = Math.round(x * 255);
        cr = ch.lut[k * 3]!;
        cg = ch.lut[k * 3 + 1]!;
        cb = ch.lut[k * 3 + 2]!;
      } else {
        cr = x * ch.rgb[0]!;
        cg = x * ch.rgb[1]!;
        cb = x * ch.rgb[2]!;
      }
      if (spec.composite === 'max') {
        r = Math.max(r, cr);
        g = Math.max(g, cg);
        b = Math.max(b, cb);
      } else {
        r += cr;
        g += cg;
        b += cb;
      }
    }
    out[i * 3] = Math.round(Math.min(255, r));
    out[i * 3 + 1] = Math.round(Math.min(255, g));
    out[i * 3 + 2] = Math.round(Math.min(255, b));
  }
  return out;
}
