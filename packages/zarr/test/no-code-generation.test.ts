import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { NODE_FLAGS } from '@tilefarm/config';
import { bloscVariantFixtures, codecVariantFixtures } from '../../../test/support/zarr-fixtures';

// Every compressor a linked Zarr may use, read through the built @tilefarm/zarr in a fresh node run
// as tilefarm's apps are (NODE_FLAGS: --disallow-code-generation-from-strings). jest's own module
// contexts do not inherit that flag, so only a separate process shows it. Before zstd and lz4 had
// decoders of their own, numcodecs' wasm glue failed here ("Code generation from strings
// disallowed for this context").

const ROOT = resolve(__dirname, '../../..');
const codecs = codecVariantFixtures();
const blosc = bloscVariantFixtures();
const arrays = [
  ...codecs.variants.map((v) => ({ dir: codecs.dir, ...v })),
  // One Blosc array per inner compressor, and a sharded one.
  ...blosc.variants.filter((v) => ['lz4-shuffle-uint16', 'zstd-bitshuffle-uint16', 'zlib-noshuffle-uint16', 'blosclz-bitshuffle-uint16'].includes(v.name)).map((v) => ({ dir: blosc.dir, ...v })),
];

const SCRIPT = `
  const { readFileSync } = require('node:fs');
  const { join } = require('node:path');
  if (process.env.BLOCK_KOFFI) {
    const Module = require('node:module');
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (request === 'koffi') throw new Error('koffi: blocked by the test');
      return load.call(this, request, ...rest);
    };
  }
  const { ObjectStoreReadable, zarritaLibrary, reportZarrCodecsTo } = require('@tilefarm/zarr');
  const { LocalObjectStore } = require('@tilefarm/storage');
  const report = [];
  reportZarrCodecsTo({ info: (f) => report.push(['info', f]), warn: (f) => report.push(['warn', f]), error: (f) => report.push(['error', f]) });
  let codeGeneration = 'allowed';
  try { new Function(''); } catch (e) { codeGeneration = e.constructor.name; }
  const BYTES = { uint8: 1, uint16: 2, int16: 2, float32: 4 };
  async function whole({ dir, kind, name, dtype, shape: [Z, Y, X], chunks: [cz, cy, cx] }) {
    const array = await zarritaLibrary.openArray(new ObjectStoreReadable(new LocalObjectStore(join(dir, kind)), name + '/'), '', kind === 'v2' ? 2 : 3);
    const size = BYTES[dtype];
    const out = Buffer.alloc(Z * Y * X * size);
    for (let gz = 0; gz * cz < Z; gz++) for (let gy = 0; gy * cy < Y; gy++) for (let gx = 0; gx * cx < X; gx++) {
      const chunk = await array.getChunk([gz, gy, gx]);
      const bytes = new Uint8Array(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
      const [sz, sy] = chunk.stride;
      const width = Math.min(cx, X - gx * cx);
      for (let z = 0; z < cz && gz * cz + z < Z; z++) for (let y = 0; y < cy && gy * cy + y < Y; y++) {
        const from = (z * sz + y * sy) * size;
        out.set(bytes.subarray(from, from + width * size), (((gz * cz + z) * Y + gy * cy + y) * X + gx * cx) * size);
      }
    }
    return out;
  }
  (async () => {
    const results = {};
    for (const a of JSON.parse(process.argv[1])) {
      try {
        results[a.kind + ' ' + a.name] = Buffer.compare(await whole(a), readFileSync(join(a.dir, a.kind, a.name + '.raw'))) === 0 ? 'equal' : 'differs';
      } catch (e) {
        results[a.kind + ' ' + a.name] = e.message;
      }
    }
    console.log(JSON.stringify({ codeGeneration, results, report }));
  })();`;

function readInNode(flags: readonly string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [...flags, '-e', SCRIPT, JSON.stringify(arrays)], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', ...env } });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as { codeGeneration: string; results: Record<string, string>; report: [string, Record<string, unknown>][] };
}

const key = (a: (typeof arrays)[number]) => `${a.kind} ${a.name}`;

it('with the apps\' node flags: every zstd, lz4, gzip, zlib and Blosc array holds the samples numpy wrote', () => {
  expect(NODE_FLAGS).toContain('--disallow-code-generation-from-strings');
  const { codeGeneration, results, report } = readInNode(NODE_FLAGS);
  expect(codeGeneration).toBe('EvalError');
  expect(results).toEqual(Object.fromEntries(arrays.map((a) => [key(a), 'equal'])));
  expect(report.map(([level, f]) => [level, f.chunks, f.codec])).toEqual([['info', 'zstd', 'libzstd'], ['info', 'lz4', 'liblz4'], ['info', 'gzip', 'node:zlib'], ['info', 'zlib', 'node:zlib'], ['info', 'Blosc', 'c-blosc']]);
});

it('without koffi, under the flags: Blosc, zstd and lz4 chunks fail saying what to install (one error line each); gzip and zlib still read', () => {
  const { results, report } = readInNode(NODE_FLAGS, { BLOCK_KOFFI: '1' });
  for (const a of arrays) {
    const compressor = 'codec' in a ? a.codec : 'Blosc';
    const library = { zstd: 'libzstd', lz4: 'liblz4', Blosc: 'c-blosc', gzip: '', zlib: '' }[compressor];
    const pkg = { zstd: 'libzstd1', lz4: 'liblz4-1', Blosc: 'libblosc1', gzip: '', zlib: '' }[compressor];
    expect([key(a), results[key(a)]]).toEqual([key(a), library ? `${compressor} chunks cannot be decoded here: install ${pkg} (${library}; Debian: apt-get install -y ${pkg}). It could not be loaded (koffi: blocked by the test), and numcodecs' wasm build, the fallback, needs code generation from strings, which this process refuses (--disallow-code-generation-from-strings)` : 'equal']);
  }
  expect(report.map(([level, f]) => [level, f.chunks, f.codec])).toEqual([['error', 'zstd', null], ['error', 'lz4', null], ['info', 'gzip', 'node:zlib'], ['info', 'zlib', 'node:zlib'], ['error', 'Blosc', null]]);
});

it('without koffi, in a process that allows code generation (a script): numcodecs decodes, with one warning each', () => {
  const { codeGeneration, results, report } = readInNode([], { BLOCK_KOFFI: '1' });
  expect(codeGeneration).toBe('allowed');
  expect(results).toEqual(Object.fromEntries(arrays.map((a) => [key(a), 'equal'])));
  expect(report.map(([level, f]) => [level, f.chunks, f.codec])).toEqual([['warn', 'zstd', 'numcodecs'], ['warn', 'lz4', 'numcodecs'], ['info', 'gzip', 'node:zlib'], ['info', 'zlib', 'node:zlib'], ['warn', 'Blosc', 'numcodecs']]);
});
