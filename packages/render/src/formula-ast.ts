/** The formula language's syntax tree. `pos` is the 1-based column where the node starts (for error messages). */

export type BinaryOp = '+' | '-' | '*' | '/' | '^' | '<' | '<=' | '>' | '>=' | '==' | '!=';

export const COMPARISON_OPS: ReadonlySet<BinaryOp> = new Set(['<', '<=', '>', '>=', '==', '!=']);

/** Allowed functions and their arity: an allow-list, nothing else is callable. */
export const FUNCTION_ARITY = {
  min: { min: 2, max: 16 },
  max: { min: 2, max: 16 },
  abs: { min: 1, max: 1 },
  sqrt: { min: 1, max: 1 },
  log: { min: 1, max: 1 },
  log10: { min: 1, max: 1 },
  exp: { min: 1, max: 1 },
  clamp: { min: 3, max: 3 },
  where: { min: 3, max: 3 },
} as const;
export type FunctionName = keyof typeof FUNCTION_ARITY;

export function isFunctionName(name: string): name is FunctionName {
  return Object.prototype.hasOwnProperty.call(FUNCTION_ARITY, name);
}

export type FormulaNode =
  | { type: 'num'; value: number; pos: number }
  /** A dataset channel by 0-based index (`c3`). */
  | { type: 'chan'; index: number; pos: number }
  /** A dataset channel by label (`ch("DAPI")`), resolved to an index against the manifest. */
  | { type: 'label'; label: string; pos: number }
  | { type: 'neg'; arg: FormulaNode; pos: number }
  | { type: 'bin'; op: BinaryOp; left: FormulaNode; right: FormulaNode; pos: number }
  | { type: 'call'; fn: FunctionName; args: FormulaNode[]; pos: number };

/** Binding strength for parsing and printing (higher binds tighter). */
export const PRECEDENCE = {
  equality: 1,
  relational: 2,
  additive: 3,
  multiplicative: 4,
  unary: 5,
  power: 6,
  primary: 7,
} as const;

export function binaryPrecedence(op: BinaryOp): number {
  switch (op) {
    case '==':
    case '!=':
      return PRECEDENCE.equality;
    case '<':
    case '<=':
    case '>':
    case '>=':
      return PRECEDENCE.relational;
    case '+':
    case '-':
      return PRECEDENCE.additive;
    case '*':
    case '/':
      return PRECEDENCE.multiplicative;
    case '^':
      return PRECEDENCE.power;
  }
}

export function nodePrecedence(node: FormulaNode): number {
  if (node.type === 'bin') return binaryPrecedence(node.op);
  if (node.type === 'neg') return PRECEDENCE.unary;
  return PRECEDENCE.primary;
}

/** Dataset channel indices a tree reads (labels must have been resolved to `chan` first to be counted). */
export function channelRefs(node: FormulaNode, into: Set<number> = new Set()): Set<number> {
  switch (node.type) {
    case 'chan':
      into.add(node.index);
      break;
    case 'neg':
      channelRefs(node.arg, into);
      break;
    case 'bin':
      channelRefs(node.left, into);
      channelRefs(node.right, into);
      break;
    case 'call':
      for (const a of node.args) channelRefs(a, into);
      break;
    default:
      break;
  }
  return into;
}
