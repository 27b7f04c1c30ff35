import type { BinaryOp, FormulaNode, FunctionName } from './formula-ast';

/**
 * Evaluates a formula tree over whole tiles of Float64 samples, one tight loop per operation.
 *
 * Defined results (the formula language never produces NaN or Infinity): any operation whose
 * result is not finite gives 0. So x/0 = 0, log(x <= 0) = 0, sqrt(x < 0) = 0, 0^-1 = 0 and an
 * overflowing exp() = 0. Comparisons give 1 or 0; where(c, a, b) takes a where c != 0.
 * Non-finite source samples (float32 datasets) read as 0 too (see toFloat64).
 */

/** Reusable Float64 scratch arrays of one tile size; the caller releases them after use. */
export class Float64Pool {
  /** Free arrays by length (full tiles and a few edge-tile sizes). */
  private readonly free = new Map<number, Float64Array[]>();
  take(n: number): Float64Array {
    return this.free.get(n)?.pop() ?? new Float64Array(n);
  }
  give(a: Float64Array): void {
    let list = this.free.get(a.length);
    if (!list) {
      if (this.free.size >= 4) this.free.clear();
      list = [];
      this.free.set(a.length, list);
    }
    if (list.length < 16) list.push(a);
  }
}

/** A value during evaluation: a constant, or an array that is either pooled (ours) or borrowed (a channel). */
type Value = number | { a: Float64Array; owned: boolean };

export interface EvalContext {
  n: number;
  /** Float64 samples of dataset channel `index`, already finite (see toFloat64). Must not be written. */
  channel(index: number): Float64Array;
  pool: Float64Pool;
}

/** The result array is pooled: give it back to `ctx.pool` when done. */
export function evaluateFormula(node: FormulaNode, ctx: EvalContext): Float64Array {
  const v = evalNode(node, ctx);
  if (typeof v === 'number') {
    const out = ctx.pool.take(ctx.n);
    out.fill(v);
    return out;
  }
  if (v.owned) return v.a;
  const out = ctx.pool.take(ctx.n);
  out.set(v.a);
  return out;
}

/** Copy samples of any dtype to Float64, non-finite values as 0. */
export function toFloat64(src: ArrayLike<number>, out: Float64Array): Float64Array {
  if (src instanceof Float32Array) {
    for (let i = 0; i < out.length; i++) {
      const x = src[i] as number;
      out[i] = x - x === 0 ? x : 0;
    }
  } else if (src instanceof Uint16Array || src instanceof Uint8Array) {
    out.set(src);
  } else {
    for (let i = 0; i < out.length; i++) {
      const x = src[i] as number;
      out[i] = x - x === 0 ? x : 0;
    }
  }
  return out;
}

function finite(x: number): number {
  return x - x === 0 ? x : 0;
}

/** Scalar semantics, shared by constant folding so a folded constant equals the per-pixel result. */
export function applyBinary(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return finite(a + b);
    case '-':
      return finite(a - b);
    case '*':
      return finite(a * b);
    case '/':
      return finite(a / b);
    case '^':
      return finite(Math.pow(a, b));
    case '<':
      return a < b ? 1 : 0;
    case '<=':
      return a <= b ? 1 : 0;
    case '>':
      return a > b ? 1 : 0;
    case '>=':
      return a >= b ? 1 : 0;
    case '==':
      return a === b ? 1 : 0;
    case '!=':
      return a !== b ? 1 : 0;
  }
}

export function applyUnary(fn: 'neg' | 'abs' | 'sqrt' | 'log' | 'log10' | 'exp', a: number): number {
  switch (fn) {
    case 'neg':
      return -a;
    case 'abs':
      return Math.abs(a);
    case 'sqrt':
      return finite(Math.sqrt(a));
    case 'log':
      return finite(Math.log(a));
    case 'log10':
      return finite(Math.log10(a));
    case 'exp':
      return finite(Math.exp(a));
  }
}

/** Fold constant subtrees (same scalar semantics as the per-pixel loops). */
export function foldConstants(node: FormulaNode): FormulaNode {
  switch (node.type) {
    case 'num':
    case 'chan':
    case 'label':
      return node;
    case 'neg': {
      const arg = foldConstants(node.arg);
      return arg.type === 'num' ? { type: 'num', value: applyUnary('neg', arg.value), pos: node.pos } : { ...node, arg };
    }
    case 'bin': {
      const left = foldConstants(node.left);
      const right = foldConstants(node.right);
      if (left.type === 'num' && right.type === 'num') return { type: 'num', value: applyBinary(node.op, left.value, right.value), pos: node.pos };
      return { ...node, left, right };
    }
    case 'call': {
      const args = node.args.map(foldConstants);
      if (args.every((a) => a.type === 'num')) {
        const xs = args.map((a) => (a as { value: number }).value);
        return { type: 'num', value: applyCallScalar(node.fn, xs), pos: node.pos };
      }
      return { ...node, args };
    }
  }
}

function applyCallScalar(fn: FunctionName, xs: number[]): number {
  const a = xs[0] as number;
  switch (fn) {
    case 'min':
      return xs.reduce((m, x) => (x < m ? x : m));
    case 'max':
      return xs.reduce((m, x) => (x > m ? x : m));
    case 'clamp': {
      const lo = xs[1] as number;
      const hi = xs[2] as number;
      return Math.min(Math.max(a, lo), hi);
    }
    case 'where':
      return a !== 0 ? (xs[1] as number) : (xs[2] as number);
    default:
      return applyUnary(fn, a);
  }
}

/** An array operand: constants are broadcast into a pooled array (cheap next to the per-op loop). */
function asArray(v: Value, ctx: EvalContext): { a: Float64Array; owned: boolean } {
  if (typeof v !== 'number') return v;
  const a = ctx.pool.take(ctx.n);
  a.fill(v);
  return { a, owned: true };
}

/** Output array for an op: reuse an owned operand in place, else take one from the pool. */
function target(ctx: EvalContext, ...operands: { a: Float64Array; owned: boolean }[]): Float64Array {
  for (const o of operands) if (o.owned) return o.a;
  return ctx.pool.take(ctx.n);
}

function evalNode(node: FormulaNode, ctx: EvalContext): Value {
  switch (node.type) {
    case 'num':
      return node.value;
    case 'chan':
      return { a: ctx.channel(node.index), owned: false };
    case 'label':
      throw new Error(`unresolved channel label ${JSON.stringify(node.label)}`);
    case 'neg': {
      const v = evalNode(node.arg, ctx);
      if (typeof v === 'number') return -v;
      const out = target(ctx, v);
      const a = v.a;
      for (let i = 0; i < out.length; i++) out[i] = -(a[i] as number);
      return { a: out, owned: true };
    }
    case 'bin': {
      const l = evalNode(node.left, ctx);
      const r = evalNode(node.right, ctx);
      if (typeof l === 'number' && typeof r === 'number') return applyBinary(node.op, l, r);
      const la = asArray(l, ctx);
      const ra = asArray(r, ctx);
      const out = target(ctx, la, ra);
      binaryLoop(node.op, la.a, ra.a, out);
      if (la.owned && la.a !== out) ctx.pool.give(la.a);
      if (ra.owned && ra.a !== out) ctx.pool.give(ra.a);
      return { a: out, owned: true };
    }
    case 'call':
      return evalCall(node.fn, node.args, ctx);
  }
}

function evalCall(fn: FunctionName, argNodes: FormulaNode[], ctx: EvalContext): Value {
  const args = argNodes.map((a) => evalNode(a, ctx));
  if (args.every((a) => typeof a === 'number')) return applyCallScalar(fn, args as number[]);
  const arrays = args.map((a) => asArray(a, ctx));
  const first = arrays[0] as { a: Float64Array; owned: boolean };
  // min/max copy the first operand into `out` before reading the others, so only it may be reused.
  const out = fn === 'min' || fn === 'max' ? target(ctx, first) : target(ctx, ...arrays);
  const x = first.a;
  switch (fn) {
    case 'min':
    case 'max': {
      if (out !== x) out.set(x);
      for (let k = 1; k < arrays.length; k++) binaryLoop(fn === 'min' ? 'min' : 'max', out, (arrays[k] as { a: Float64Array }).a, out);
      break;
    }
    case 'clamp': {
      const lo = (arrays[1] as { a: Float64Array }).a;
      const hi = (arrays[2] as { a: Float64Array }).a;
      for (let i = 0; i < out.length; i++) {
        const v = x[i] as number;
        const l = lo[i] as number;
        const h = hi[i] as number;
        const m = v > l ? v : l;
        out[i] = m < h ? m : h;
      }
      break;
    }
    case 'where': {
      const a = (arrays[1] as { a: Float64Array }).a;
      const b = (arrays[2] as { a: Float64Array }).a;
      for (let i = 0; i < out.length; i++) out[i] = (x[i] as number) !== 0 ? (a[i] as number) : (b[i] as number);
      break;
    }
    case 'abs':
      for (let i = 0; i < out.length; i++) out[i] = Math.abs(x[i] as number);
      break;
    case 'sqrt':
      for (let i = 0; i < out.length; i++) {
        const v = Math.sqrt(x[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      break;
    case 'log':
      for (let i = 0; i < out.length; i++) {
        const v = Math.log(x[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      break;
    case 'log10':
      for (let i = 0; i < out.length; i++) {
        const v = Math.log10(x[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      break;
    case 'exp':
      for (let i = 0; i < out.length; i++) {
        const v = Math.exp(x[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      break;
  }
  for (const a of arrays) if (a.owned && a.a !== out) ctx.pool.give(a.a);
  return { a: out, owned: true };
}

/** out[i] = a[i] op b[i]; `out` may alias `a` or `b`. */
function binaryLoop(op: BinaryOp | 'min' | 'max', a: Float64Array, b: Float64Array, out: Float64Array): void {
  const n = out.length;
  switch (op) {
    case '+':
      for (let i = 0; i < n; i++) {
        const v = (a[i] as number) + (b[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      return;
    case '-':
      for (let i = 0; i < n; i++) {
        const v = (a[i] as number) - (b[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      return;
    case '*':
      for (let i = 0; i < n; i++) {
        const v = (a[i] as number) * (b[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      return;
    case '/':
      for (let i = 0; i < n; i++) {
        const v = (a[i] as number) / (b[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      return;
    case '^':
      for (let i = 0; i < n; i++) {
        const v = Math.pow(a[i] as number, b[i] as number);
        out[i] = v - v === 0 ? v : 0;
      }
      return;
    case '<':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) < (b[i] as number) ? 1 : 0;
      return;
    case '<=':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) <= (b[i] as number) ? 1 : 0;
      return;
    case '>':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) > (b[i] as number) ? 1 : 0;
      return;
    case '>=':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) >= (b[i] as number) ? 1 : 0;
      return;
    case '==':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) === (b[i] as number) ? 1 : 0;
      return;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = (a[i] as number) !== (b[i] as number) ? 1 : 0;
      return;
    case 'min':
      for (let i = 0; i < n; i++) {
        const x = a[i] as number;
        const y = b[i] as number;
        out[i] = y < x ? y : x;
      }
      return;
    case 'max':
      for (let i = 0; i < n; i++) {
        const x = a[i] as number;
        const y = b[i] as number;
        out[i] = y > x ? y : x;
      }
      return;
  }
}
