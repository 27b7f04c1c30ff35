import { type FormulaNode, PRECEDENCE, binaryPrecedence, nodePrecedence } from './formula-ast';

/**
 * Print a tree back to formula text with the fewest parentheses; parsing the result gives the same
 * tree. Compact (no spaces) so the printed text is never much longer than what was parsed.
 */
export function printFormula(node: FormulaNode): string {
  switch (node.type) {
    case 'num':
      return printNumber(node.value);
    case 'chan':
      return `c${node.index}`;
    case 'label':
      return `ch(${quote(node.label)})`;
    case 'neg':
      return `-${wrap(node.arg, nodePrecedence(node.arg) < PRECEDENCE.unary)}`;
    case 'call':
      return `${node.fn}(${node.args.map(printFormula).join(',')})`;
    case 'bin': {
      const p = binaryPrecedence(node.op);
      if (node.op === '^') {
        // Right-associative: the base must be a primary, the exponent may be a unary expression.
        return `${wrap(node.left, nodePrecedence(node.left) < PRECEDENCE.primary)}^${wrap(node.right, nodePrecedence(node.right) < PRECEDENCE.unary)}`;
      }
      // Left-associative: an equal-precedence right operand needs parentheses (a-(b-c)).
      const left = wrap(node.left, nodePrecedence(node.left) < p);
      const right = wrap(node.right, nodePrecedence(node.right) <= p);
      return `${left}${node.op}${right}`;
    }
  }
}

function wrap(node: FormulaNode, parens: boolean): string {
  const s = printFormula(node);
  return parens ? `(${s})` : s;
}

function quote(label: string): string {
  return `"${label.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Shortest of plain and exponent notation that reads back to the same double. */
export function printNumber(v: number): string {
  const plain = String(v).replace(/^0\./, '.');
  const exp = v.toExponential().replace('e+', 'e');
  return exp.length < plain.length ? exp : plain;
}
