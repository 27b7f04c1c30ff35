import type { FormulaNode } from './formula-ast';
import { applyBinary, applyUnary } from './formula-eval';

/**
 * Interval arithmetic over a formula tree: given a range for every channel it reads, a range that
 * contains every value the formula can produce. Used for "auto" windows of formula channels, so the
 * window comes from the dataset's stored statistics and is the same for every tile of a plane
 * (a per-tile min/max would make neighbouring tiles disagree). Bounds may be wider than the values
 * that actually occur (c0 - c0 gives [-max, max]); an explicit window is the way to be exact.
 * Returns undefined where no finite bound exists (division by a range containing 0, log of a
 * range reaching 0, pow of 0 with a negative exponent): the caller then asks for an explicit window.
 */
export type Interval = readonly [number, number];

export function formulaBounds(node: FormulaNode, channel: (index: number) => Interval): Interval | undefined {
  const r = bounds(node, channel);
  if (r === undefined || !Number.isFinite(r[0]) || !Number.isFinite(r[1])) return undefined;
  return r;
}

function hull(values: number[]): Interval | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return undefined;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : undefined;
}

function contains(i: Interval, v: number): boolean {
  return i[0] <= v && v <= i[1];
}

function bounds(node: FormulaNode, channel: (index: number) => Interval): Interval | undefined {
  const sub = (n: FormulaNode): Interval | undefined => bounds(n, channel);
  switch (node.type) {
    case 'num':
      return [node.value, node.value];
    case 'chan':
      return channel(node.index);
    case 'label':
      return undefined;
    case 'neg': {
      const a = sub(node.arg);
      return a && [-a[1], -a[0]];
    }
    case 'bin': {
      const a = sub(node.left);
      const b = sub(node.right);
      if (!a || !b) return undefined;
      switch (node.op) {
        case '+':
          return hull([a[0] + b[0], a[1] + b[1]]);
        case '-':
          return hull([a[0] - b[1], a[1] - b[0]]);
        case '*':
          return hull([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]);
        case '/':
          if (a[0] === 0 && a[1] === 0) return [0, 0];
          if (b[0] === 0 && b[1] === 0) return [0, 0]; // x/0 is defined as 0
          if (contains(b, 0)) return undefined; // x/ε is unbounded
          return hull([a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1]]);
        case '^':
          return powBounds(a, b);
        default:
          // Comparisons give 1 or 0.
          return [0, 1];
      }
    }
    case 'call': {
      const args: Interval[] = [];
      for (const n of node.args) {
        const r = sub(n);
        if (!r) return undefined;
        args.push(r);
      }
      const x = args[0] as Interval;
      switch (node.fn) {
        case 'min':
          return [Math.min(...args.map((r) => r[0])), Math.min(...args.map((r) => r[1]))];
        case 'max':
          return [Math.max(...args.map((r) => r[0])), Math.max(...args.map((r) => r[1]))];
        case 'clamp': {
          const lo = args[1] as Interval;
          const hi = args[2] as Interval;
          return [Math.min(Math.max(x[0], lo[0]), hi[0]), Math.min(Math.max(x[1], lo[1]), hi[1])];
        }
        case 'where': {
          const a = args[1] as Interval;
          const b = args[2] as Interval;
          if (x[0] === 0 && x[1] === 0) return b;
          if (!contains(x, 0)) return a;
          return [Math.min(a[0], b[0]), Math.max(a[1], b[1])];
        }
        case 'abs':
          if (x[0] >= 0) return x;
          if (x[1] <= 0) return [-x[1], -x[0]];
          return [0, Math.max(-x[0], x[1])];
        case 'sqrt':
          // sqrt of a negative value is defined as 0: monotonic over the clamped range.
          return [Math.sqrt(Math.max(x[0], 0)), Math.sqrt(Math.max(x[1], 0))];
        case 'log':
        case 'log10':
          if (x[1] <= 0) return [0, 0];
          if (x[0] <= 0) return undefined; // values near 0 give arbitrarily negative logs
          return [applyUnary(node.fn, x[0]), applyUnary(node.fn, x[1])];
        case 'exp': {
          const lo = Math.exp(x[0]);
          const hi = Math.exp(x[1]);
          return Number.isFinite(hi) ? [lo, hi] : undefined;
        }
      }
    }
  }
}

function powBounds(base: Interval, exp: Interval): Interval | undefined {
  const expCanBeNegative = exp[0] < 0;
  if (expCanBeNegative && contains(base, 0)) return undefined; // 0^-k is unbounded nearby
  const values: number[] = [];
  if (base[0] >= 0) {
    // Monotonic in each argument for a non-negative base: the extremes are at the corners.
    for (const b of base) for (const e of exp) values.push(applyBinary('^', b, e));
    if (contains(exp, 0)) values.push(1);
    return hull(values);
  }
  // A negative base: |result| <= max |b|^e over the corners; non-integer exponents give NaN, defined as 0.
  const mags = [Math.abs(base[0]), Math.abs(base[1])];
  if (contains(base, 0)) mags.push(0);
  let m = 0;
  for (const b of mags) for (const e of exp) m = Math.max(m, Math.pow(b, e));
  if (contains(exp, 0)) m = Math.max(m, 1);
  if (!Number.isFinite(m)) return undefined;
  if (exp[0] === exp[1] && Number.isInteger(exp[0])) {
    const e = exp[0];
    for (const b of base) values.push(Math.pow(b, e));
    if (contains(base, 0)) values.push(Math.pow(0, e));
    // Even powers have their minimum at 0 (or the endpoint nearest it); odd powers are monotonic.
    return hull(values);
  }
  return [-m, m];
}
