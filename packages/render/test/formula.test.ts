import fc from 'fast-check';
import { DatasetManifest, RenderSpec, SPEC_LIMITS, TilefarmError } from '@tilefarm/contracts';
import { type FormulaNode, checkFormulaSyntax, parseFormula, printFormula, sourceChannelsNeeded, specIdOf, validateSpecForDataset } from '@tilefarm/render';

/** The tree without source positions (printing moves them). */
function strip(n: FormulaNode): unknown {
  switch (n.type) {
    case 'num':
      return { num: n.value };
    case 'chan':
      return { chan: n.index };
    case 'label':
      return { label: n.label };
    case 'neg':
      return { neg: strip(n.arg) };
    case 'bin':
      return { op: n.op, l: strip(n.left), r: strip(n.right) };
    case 'call':
      return { fn: n.fn, args: n.args.map(strip) };
  }
}

function size(n: FormulaNode): number {
  switch (n.type) {
    case 'neg':
      return 1 + size(n.arg);
    case 'bin':
      return 1 + size(n.left) + size(n.right);
    case 'call':
      return 1 + n.args.reduce((s, a) => s + size(a), 0);
    default:
      return 1;
  }
}

const OPS = ['+', '-', '*', '/', '^', '<', '<=', '>', '>=', '==', '!='] as const;
const { tree } = fc.letrec<{ tree: FormulaNode }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.nat({ max: 100000 }), fc.double({ min: 0, max: 1e30, noNaN: true, noDefaultInfinity: true })).map((v): FormulaNode => ({ type: 'num', value: Math.abs(v) + 0, pos: 0 })),
    fc.nat({ max: 40 }).map((index): FormulaNode => ({ type: 'chan', index, pos: 0 })),
    fc.string({ minLength: 1, maxLength: 8 }).map((label): FormulaNode => ({ type: 'label', label, pos: 0 })),
    tie('tree').map((arg): FormulaNode => ({ type: 'neg', arg, pos: 0 })),
    fc.tuple(fc.constantFrom(...OPS), tie('tree'), tie('tree')).map(([op, left, right]): FormulaNode => ({ type: 'bin', op, left, right, pos: 0 })),
    fc.tuple(fc.constantFrom('abs', 'sqrt', 'log', 'log10', 'exp'), tie('tree')).map(([fn, a]): FormulaNode => ({ type: 'call', fn, args: [a], pos: 0 })),
    fc.tuple(fc.constantFrom('min', 'max'), fc.array(tie('tree'), { minLength: 2, maxLength: 4 })).map(([fn, args]): FormulaNode => ({ type: 'call', fn, args, pos: 0 })),
    fc.tuple(fc.constantFrom('clamp', 'where'), tie('tree'), tie('tree'), tie('tree')).map(([fn, a, b, c]): FormulaNode => ({ type: 'call', fn, args: [a, b, c], pos: 0 })),
  ),
}));

const JUNK = fc
  .array(fc.constantFrom('c0', 'c12', 'ch', '("A")', '"', "'", '\\', '(', ')', ',', '+', '-', '*', '/', '^', '<', '<=', '==', '!=', '>', '=', '!', '1', '2.5', '.', 'e', '1e', '1e999', 'min', 'max(', 'where', 'clamp', 'x', ' ', '$', '\n', 'constructor', '__proto__'), { maxLength: 40 })
  .map((parts) => parts.join(''));

describe('formula parser', () => {
  it('print then parse gives the same tree', () => {
    fc.assert(
      fc.property(
        tree.filter((t) => size(t) <= SPEC_LIMITS.maxFormulaNodes),
        (t) => {
          const printed = printFormula(t);
          fc.pre(printed.length <= SPEC_LIMITS.maxFormulaLength);
          let reparsed: FormulaNode;
          try {
            reparsed = parseFormula(printed);
          } catch (e) {
            // Deep random trees may exceed the nesting cap; that is the parser's own error, never a crash.
            expect((e as TilefarmError).code).toBe('invalid_formula');
            fc.pre(false);
            return;
          }
          expect(strip(reparsed)).toEqual(strip(t));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('parse -> print -> parse is stable on token soup, and junk only ever throws invalid_formula', () => {
    fc.assert(
      fc.property(fc.oneof(JUNK, fc.string({ maxLength: 60 })), (src) => {
        let first: FormulaNode;
        try {
          first = parseFormula(src);
        } catch (e) {
          expect(e).toBeInstanceOf(TilefarmError);
          expect((e as TilefarmError).code).toBe('invalid_formula');
          expect((e as TilefarmError).message).toMatch(/column \d+|characters|empty/);
          return;
        }
        expect(strip(parseFormula(printFormula(first)))).toEqual(strip(first));
      }),
      { numRuns: 2000 },
    );
  });

  it('deep nesting hits the cap instead of the stack', () => {
    for (const src of ['('.repeat(200) + '1' + ')'.repeat(200), '-'.repeat(400) + '1', '2^'.repeat(200) + '2', 'abs('.repeat(100) + 'c0' + ')'.repeat(100)]) {
      expect(() => parseFormula(src)).toThrow(expect.objectContaining({ code: 'invalid_formula', message: expect.stringMatching(/nests deeper than \d+ levels at column \d+/) }));
    }
    expect(() => parseFormula('1+'.repeat(300) + '1')).toThrow(/characters|more than 256/);
  });

  it('knows precedence and associativity', () => {
    expect(printFormula(parseFormula('-2^2'))).toBe('-2^2');
    expect(strip(parseFormula('-2^2'))).toEqual({ neg: { op: '^', l: { num: 2 }, r: { num: 2 } } });
    expect(strip(parseFormula('2^3^2'))).toEqual({ op: '^', l: { num: 2 }, r: { op: '^', l: { num: 3 }, r: { num: 2 } } });
    expect(printFormula(parseFormula('(c0 - c1) - (c2 - c3)'))).toBe('c0-c1-(c2-c3)');
    expect(printFormula(parseFormula('c0 + 2 * (c3 - c1)'))).toBe('c0+2*(c3-c1)');
    expect(printFormula(parseFormula("ch('a\"b') < 1 == 0"))).toBe('ch("a\\"b")<1==0');
    expect(printFormula(parseFormula('(-2)^2'))).toBe('(-2)^2');
    expect(printFormula(parseFormula('1000000 + 0.5'))).toBe('1e6+.5');
  });

  it.each([
    ['c0 + (c1 * 2))', 'unexpected ")" at column 14'],
    ['c0 +', 'unexpected end of formula at column 5'],
    ['c0 $ c1', 'unexpected "$" at column 4'],
    ['foo(c0)', 'unknown name "foo" at column 1 (use c0, c1, ..., ch("label") or one of min, max, abs, sqrt, log, log10, exp, clamp, where)'],
    ['sqrt(c0, c1)', 'sqrt() takes 1 argument, got 2 at column 1'],
    ['clamp(c0, 1)', 'clamp() takes 3 arguments, got 2 at column 1'],
    ['ch(3)', 'ch() takes a quoted channel label, found "3" at column 4'],
    ['ch("abc', 'unterminated string at column 4'],
    ['1e999', 'number 1e999 is out of range at column 1'],
    ['c0 = c1', 'unexpected "=" at column 4'],
    ['(1).constructor', 'unexpected "." at column 4'],
    ['', 'formula is empty'],
  ])('error for %j: %s', (src, message) => {
    expect(() => parseFormula(src)).toThrow(new TilefarmError('invalid_formula', message));
  });

  it('caps length and node count', () => {
    expect(() => parseFormula('c0+'.repeat(200) + 'c0')).toThrow(/at most 512/);
    expect(() => parseFormula(Array.from({ length: 200 }, () => '1').join('+'))).toThrow(/more than 256 values and operations/);
  });
});

const manifest = DatasetManifest.parse({
  v: 1,
  id: 'm',
  version: 2,
  width: 1000,
  height: 1000,
  sizeZ: 5,
  sizeT: 1,
  tileSize: 256,
  levels: 3,
  dtype: 'uint16',
  channels: [
    { label: 'DAPI', color: '#0000ff', window: [0, 1000] },
    { label: 'GFP', color: '#00ff00', window: [0, 1000] },
    { label: 'RFP', color: '#ff0000', window: [0, 1000] },
  ],
  sourceEncoding: 'raw-deflate-v1',
  createdAt: '2024-01-01T00:00:00Z',
});

describe('spec checks', () => {
  const err = (f: () => void): TilefarmError => {
    try {
      f();
    } catch (e) {
      return e as TilefarmError;
    }
    throw new Error('expected a throw');
  };

  it('names the field and the reason', () => {
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ index: 0 }, { index: 7 }] }), manifest))).toMatchObject({
      code: 'invalid_spec',
      message: 'channels.1.index: 7 but the dataset has 3 channels (0..2)',
    });
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ label: 'CY5' }] }), manifest)).message).toBe(
      'channels.0.label: "CY5" is not a channel of this dataset (channels: DAPI, GFP, RFP)',
    );
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ index: 0 }, { formula: 'c0 + c5' }] }), manifest))).toMatchObject({
      code: 'invalid_formula',
      message: 'channels.1.formula: c5 at column 6 but the dataset has 3 channels (c0..c2)',
    });
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ formula: 'ch("GFP") - ch("Cy5")' }] }), manifest)).message).toMatch(
      /^channels\.0\.formula: ch\("Cy5"\) at column 13 is not a channel/,
    );
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ index: 0 }], projection: { type: 'max', z: [5, 9] } }), manifest)).message).toBe(
      "projection.z: starts at slice 5 but the dataset has 5 slices (0..4)",
    );
    // Inactive formulas are still checked.
    expect(err(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ index: 0 }, { formula: 'c0 +', active: false }] }), manifest)).code).toBe('invalid_formula');
    expect(() => validateSpecForDataset(RenderSpec.parse({ channels: [{ index: 0 }], projection: { type: 'max', z: [2, 99] } }), manifest)).not.toThrow();
  });

  it('checks formula syntax without a dataset', () => {
    expect(err(() => checkFormulaSyntax(RenderSpec.parse({ channels: [{ index: 0 }, { index: 1 }, { formula: 'c0 + (c1 * 2))' }] })))).toMatchObject({
      code: 'invalid_formula',
      message: 'channels.2.formula: unexpected ")" at column 14',
    });
    expect(() => checkFormulaSyntax(RenderSpec.parse({ channels: [{ formula: 'c99 * 2' }] }))).not.toThrow();
  });

  it('lists the source channels a render reads', () => {
    const spec = RenderSpec.parse({ channels: [{ index: 2 }, { index: 1, active: false }, { formula: 'ch("DAPI") + c2' }] });
    expect(sourceChannelsNeeded(spec, manifest)).toEqual([0, 2]);
  });

  it('spec ids are canonical', () => {
    const a = RenderSpec.parse({ channels: [{ index: 0, color: '#ff0000' }] });
    const b = RenderSpec.parse({ quality: 85, channels: [{ color: '#ff0000', index: 0, gamma: 1 }] });
    expect(specIdOf(a)).toMatch(/^s[0-9a-f]{16}$/);
    expect(specIdOf(a)).toBe(specIdOf(b));
    expect(specIdOf(a)).not.toBe(specIdOf(RenderSpec.parse({ channels: [{ index: 1 }] })));
  });
});
