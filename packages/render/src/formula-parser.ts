import { SPEC_LIMITS, TilefarmError } from '@tilefarm/contracts';
import { type BinaryOp, type FormulaNode, FUNCTION_ARITY, isFunctionName } from './formula-ast';

/**
 * Hand-written lexer and recursive-descent parser for the formula language. User text is only
 * ever turned into a tree of allow-listed operations: never eval, Function or an expression library.
 *
 * Grammar (lowest to highest binding):
 *   equality       := relational (("==" | "!=") relational)*
 *   relational     := additive (("<" | "<=" | ">" | ">=") additive)*
 *   additive       := multiplicative (("+" | "-") multiplicative)*
 *   multiplicative := unary (("*" | "/") unary)*
 *   unary          := "-" unary | power
 *   power          := primary ("^" unary)?            (right-associative; -2^2 = -(2^2))
 *   primary        := number | cN | ch("label") | fn "(" args ")" | "(" equality ")"
 */

/** Nesting cap: keeps recursion (parser, evaluator, printer) far from the stack limit. */
export const MAX_FORMULA_DEPTH = 64;
/** Largest channel index a formula may name (as the spec schema's `index`). */
export const MAX_FORMULA_CHANNEL = 1023;

type TokenKind = 'num' | 'ident' | 'str' | 'op' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  /** Numeric value for `num`, unescaped content for `str`. */
  value: number | string;
  pos: number;
}

const NUMBER = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const OPERATORS = ['<=', '>=', '==', '!=', '+', '-', '*', '/', '^', '<', '>', '(', ')', ','];

function fail(message: string): never {
  throw new TilefarmError('invalid_formula', message);
}

/** How a token is named in "unexpected ..." messages. */
function describe(t: Token): string {
  return t.kind === 'end' ? 'end of formula' : JSON.stringify(t.text);
}

function lex(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    const pos = i + 1;
    if ((ch >= '0' && ch <= '9') || (ch === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(src);
      const text = m?.[0] ?? ch;
      const value = Number(text);
      if (!Number.isFinite(value)) fail(`number ${text} is out of range at column ${pos}`);
      tokens.push({ kind: 'num', text, value, pos });
      i += text.length;
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      IDENT.lastIndex = i;
      const text = IDENT.exec(src)?.[0] ?? ch;
      tokens.push({ kind: 'ident', text, value: text, pos });
      i += text.length;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        const c = src[j];
        if (c === undefined) fail(`unterminated string at column ${pos}`);
        if (c === ch) break;
        if (c === '\\') {
          const next = src[j + 1];
          if (next !== '\\' && next !== '"' && next !== "'") fail(`unknown escape in string at column ${j + 1}`);
          value += next;
          j += 2;
          continue;
        }
        value += c;
        j++;
      }
      tokens.push({ kind: 'str', text: src.slice(i, j + 1), value, pos });
      i = j + 1;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) fail(`unexpected ${JSON.stringify(ch)} at column ${pos}`);
    tokens.push({ kind: 'op', text: op, value: op, pos });
    i += op.length;
  }
  tokens.push({ kind: 'end', text: '', value: '', pos: src.length + 1 });
  return tokens;
}

class Parser {
  private i = 0;
  private nodes = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): FormulaNode {
    const node = this.equality();
    const t = this.peek();
    if (t.kind !== 'end') fail(`unexpected ${describe(t)} at column ${t.pos}`);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }
  private next(): Token {
    const t = this.tokens[this.i] as Token;
    if (t.kind !== 'end') this.i++;
    return t;
  }
  private isOp(text: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.text === text;
  }
  private expectOp(text: string): Token {
    const t = this.next();
    if (t.kind !== 'op' || t.text !== text) fail(`expected ${JSON.stringify(text)} but found ${describe(t)} at column ${t.pos}`);
    return t;
  }
  private count(pos: number): void {
    if (++this.nodes > SPEC_LIMITS.maxFormulaNodes) {
      fail(`formula has more than ${SPEC_LIMITS.maxFormulaNodes} values and operations (at column ${pos})`);
    }
  }
  private enter(pos: number): void {
    if (++this.depth > MAX_FORMULA_DEPTH) fail(`formula nests deeper than ${MAX_FORMULA_DEPTH} levels at column ${pos}`);
  }

  private binaryLevel(ops: readonly string[], operand: () => FormulaNode): FormulaNode {
    let left = operand();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || !ops.includes(t.text)) return left;
      this.next();
      const right = operand();
      this.count(t.pos);
      left = { type: 'bin', op: t.text as BinaryOp, left, right, pos: t.pos };
    }
  }

  private equality(): FormulaNode {
    return this.binaryLevel(['==', '!='], () => this.relational());
  }
  private relational(): FormulaNode {
    return this.binaryLevel(['<', '<=', '>', '>='], () => this.additive());
  }
  private additive(): FormulaNode {
    return this.binaryLevel(['+', '-'], () => this.multiplicative());
  }
  private multiplicative(): FormulaNode {
    return this.binaryLevel(['*', '/'], () => this.unary());
  }

  private unary(): FormulaNode {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '-') {
      this.next();
      this.enter(t.pos);
      const arg = this.unary();
      this.depth--;
      this.count(t.pos);
      return { type: 'neg', arg, pos: t.pos };
    }
    return this.power();
  }

  private power(): FormulaNode {
    const base = this.primary();
    const t = this.peek();
    if (t.kind === 'op' && t.text === '^') {
      this.next();
      this.enter(t.pos);
      const exponent = this.unary();
      this.depth--;
      this.count(t.pos);
      return { type: 'bin', op: '^', left: base, right: exponent, pos: t.pos };
    }
    return base;
  }

  private primary(): FormulaNode {
    const t = this.next();
    if (t.kind === 'num') {
      this.count(t.pos);
      return { type: 'num', value: t.value as number, pos: t.pos };
    }
    if (t.kind === 'op' && t.text === '(') {
      this.enter(t.pos);
      const inner = this.equality();
      this.expectOp(')');
      this.depth--;
      return inner;
    }
    if (t.kind === 'ident') {
      const m = /^c(\d+)$/.exec(t.text);
      if (m) {
        const index = Number(m[1]);
        if (index > MAX_FORMULA_CHANNEL) fail(`channel ${t.text} is beyond c${MAX_FORMULA_CHANNEL} at column ${t.pos}`);
        this.count(t.pos);
        return { type: 'chan', index, pos: t.pos };
      }
      if (t.text === 'ch') {
        this.expectOp('(');
        const s = this.next();
        if (s.kind !== 'str') fail(`ch() takes a quoted channel label, found ${describe(s)} at column ${s.pos}`);
        this.expectOp(')');
        this.count(t.pos);
        return { type: 'label', label: s.value as string, pos: t.pos };
      }
      if (isFunctionName(t.text)) {
        const fn = t.text;
        this.expectOp('(');
        this.enter(t.pos);
        const args: FormulaNode[] = [];
        if (!this.isOp(')')) {
          args.push(this.equality());
          while (this.isOp(',')) {
            this.next();
            args.push(this.equality());
          }
        }
        this.expectOp(')');
        this.depth--;
        const arity = FUNCTION_ARITY[fn];
        if (args.length < arity.min || args.length > arity.max) {
          const want = arity.min === arity.max ? `${arity.min}` : `${arity.min} to ${arity.max}`;
          fail(`${fn}() takes ${want} argument${arity.max === 1 ? '' : 's'}, got ${args.length} at column ${t.pos}`);
        }
        this.count(t.pos);
        return { type: 'call', fn, args, pos: t.pos };
      }
      fail(`unknown name ${JSON.stringify(t.text)} at column ${t.pos} (use c0, c1, ..., ch("label") or one of ${Object.keys(FUNCTION_ARITY).join(', ')})`);
    }
    fail(`unexpected ${describe(t)} at column ${t.pos}`);
  }
}

/**
 * Parse a formula into its tree; throws TilefarmError('invalid_formula', ...) with the column of
 * the problem. `field` (e.g. "channels.2.formula") prefixes the message when given.
 */
export function parseFormula(src: string, field?: string): FormulaNode {
  try {
    if (src.length > SPEC_LIMITS.maxFormulaLength) {
      fail(`formula is ${src.length} characters long; at most ${SPEC_LIMITS.maxFormulaLength}`);
    }
    if (src.trim() === '') fail('formula is empty');
    return new Parser(lex(src)).parse();
  } catch (e) {
    if (field !== undefined && e instanceof TilefarmError) throw new TilefarmError(e.code, `${field}: ${e.message}`);
    throw e;
  }
}
