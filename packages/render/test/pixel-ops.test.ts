import { fusedColor2, fusedColor3 } from '../src/pixel-ops';

/** The per-pixel rule of pixel-ops.ts, written plainly: the fast loops must give exactly these bytes. */
function to8(v: number): number {
  return v >= 255 ? 255 : (v + 0.5) | 0;
}
function reference3(mode: 'add' | 'max', src: Uint16Array[], tables: Float32Array[], rgb: [number, number, number][], n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const parts = src.map((s, c) => (tables[c] as Float32Array)[s[i] as number]! * rgb[c]![k]!);
      out[i * 3 + k] = to8(mode === 'add' ? parts.reduce((a, b) => a + b, 0) : Math.max(...parts));
    }
  }
  return out;
}

function levels(lo: number, hi: number): Float32Array {
  const t = new Float32Array(65536);
  for (let v = 0; v < t.length; v++) t[v] = Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
  return t;
}

describe('fusedColor3', () => {
  // Windows and colours where sums pass 255 (the clamp) and land on .5 (the rounding).
  const tables = [levels(90, 2600), levels(0, 510), levels(100, 2200)];
  const rgb: [number, number, number][] = [
    [0, 128, 255],
    [0, 255, 0],
    [255, 255, 0],
  ];
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 3200) + 0;

  it.each([
    ['add', 65536, 0],
    ['add', 1003, 0], // a tail after the 4-pixel groups
    ['add', 1003, 1], // output not 4-byte aligned: byte stores only
    ['max', 1003, 0],
  ] as const)('%s, %i pixels, output at offset %i: the same bytes as the plain rule', (mode, n, offset) => {
    const src = [0, 1, 2].map(() => Uint16Array.from({ length: n }, random));
    src[1]![0] = 255; // exactly .5 of a colour step: 127.5 -> 128
    const expected = reference3(mode, src, tables, rgb, n);
    const out = new Uint8Array(n * 3 + offset).subarray(offset);
    fusedColor3(mode, src[0]!, tables[0]!, rgb[0]!, src[1]!, tables[1]!, rgb[1]!, src[2]!, tables[2]!, rgb[2]!, out);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
    expect(out.some((v) => v === 255)).toBe(true);
  });
});

describe('fusedColor2', () => {
  const tables = [levels(90, 2600), levels(0, 510)];
  const rgb: [number, number, number][] = [
    [0, 255, 255],
    [255, 255, 0],
  ];
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) % 3200;

  it.each([
    ['add', 65536, 0],
    ['add', 1001, 0],
    ['add', 1001, 1],
    ['max', 1001, 0],
  ] as const)('%s, %i pixels, output at offset %i: the same bytes as the plain rule', (mode, n, offset) => {
    const src = [0, 1].map(() => Uint16Array.from({ length: n }, random));
    src[1]![0] = 255; // 127.5 -> 128
    const expected = reference3(mode, src, tables, rgb, n);
    const out = new Uint8Array(n * 3 + offset).subarray(offset);
    fusedColor2(mode, src[0]!, tables[0]!, rgb[0]!, src[1]!, tables[1]!, rgb[1]!, out);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
    expect(out.some((v) => v === 255)).toBe(true);
  });
});
