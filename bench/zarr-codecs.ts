/**
 * bench:zarr-codecs — decode speed of the zstd, lz4, gzip and zlib chunk decoders linked Zarrs go
 * through: numcodecs' wasm build (zarrita's default, which needs code generation from strings),
 * fzstd (pure JS, the TIFF ingest's zstd), libzstd / liblz4 through koffi and node's zlib
 * (packages/zarr/src/*-codec.ts, what tilefarm uses), and zarrita's own gzip / zlib. One microscopy-like uint16 chunk per size (smooth structure, texture, a little
 * noise), encoded by numcodecs; every decoder's output is checked equal first. Figures: MB/s of
 * decoded samples, median (range) of 5 runs of 300 ms, one thread.
 */
import { decompress as fzstdDecompress } from 'fzstd';
import { deflateSync, gzipSync } from 'node:zlib';
import { openNodeZlib } from '../packages/zarr/src/deflate-codec';
import { openLiblz4 } from '../packages/zarr/src/lz4-codec';
import { openLibzstd } from '../packages/zarr/src/zstd-codec';

interface NumcodecsCodec {
  encode(data: Uint8Array): Promise<Uint8Array>;
  decode(data: Uint8Array): Promise<Uint8Array>;
}
async function numcodecs(name: 'zstd' | 'lz4', config: object): Promise<NumcodecsCodec> {
  // ES modules only, with types behind "exports".
  const specifier: string = `numcodecs/${name}`;
  const { default: Codec } = (await import(specifier)) as { default: { fromConfig(c: object): NumcodecsCodec } };
  return Codec.fromConfig(config);
}

function image(side: number): Uint8Array {
  const a = new Uint16Array(side * side);
  let s = 12345;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      a[y * side + x] = 300 + 2000 * Math.exp(-((x - side / 2) ** 2 + (y - side / 3) ** 2) / ((side * side) / 8)) + ((7 * x + 13 * y) % 251) + (s >>> 30);
    }
  }
  return new Uint8Array(a.buffer);
}

async function speed(decode: () => unknown, bytes: number): Promise<string> {
  for (let i = 0; i < 5; i++) await decode();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 300) {
      await decode();
      n++;
    }
    runs.push((n * bytes) / ((performance.now() - t0) / 1000) / 1e6);
  }
  runs.sort((a, b) => a - b);
  return `${runs[2]!.toFixed(0)} MB/s (${runs[0]!.toFixed(0)}–${runs[4]!.toFixed(0)})`;
}

/** zarrita's own codec for `name` (its default registry, before @tilefarm/zarr replaces it). */
async function zarritaCodec(name: 'gzip' | 'zlib'): Promise<{ decode(data: Uint8Array): Promise<Uint8Array> }> {
  const specifier: string = 'zarrita';
  const { registry } = (await import(specifier)) as { registry: Map<string, () => Promise<{ fromConfig(c: object): { decode(data: Uint8Array): Promise<Uint8Array> } }>> };
  return (await registry.get(name)!()).fromConfig({});
}

async function main(): Promise<void> {
  const zstd = openLibzstd();
  const lz4 = openLiblz4();
  const nZstd = await numcodecs('zstd', { level: 3 });
  const nLz4 = await numcodecs('lz4', { acceleration: 1 });
  const gzip = openNodeZlib('gzip');
  const zlib = openNodeZlib('zlib');
  const zGzip = await zarritaCodec('gzip');
  const zZlib = await zarritaCodec('zlib');
  console.log(`${zstd.description}, ${lz4.description}, numcodecs (wasm), fzstd; load ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`);
  for (const side of [256, 1024]) {
    const raw = image(side);
    const cz = await nZstd.encode(raw);
    const cl = await nLz4.encode(raw);
    const same = (d: Uint8Array) => Buffer.compare(Buffer.from(d.buffer, d.byteOffset, d.byteLength), Buffer.from(raw.buffer)) === 0;
    if (![zstd.decode(cz, raw.byteLength), fzstdDecompress(cz), await nZstd.decode(cz)].every(same)) throw new Error('zstd decoders differ');
    if (![lz4.decode(cl, raw.byteLength), await nLz4.decode(cl)].every(same)) throw new Error('lz4 decoders differ');
    const cg = gzipSync(raw, { level: 5 });
    const cd = deflateSync(raw, { level: 5 });
    if (![gzip.decode(cg, raw.byteLength), await zGzip.decode(cg), zlib.decode(cd, raw.byteLength), await zZlib.decode(cd)].every(same)) throw new Error('gzip / zlib decoders differ');
    const reused = new Uint8Array(raw.byteLength);
    console.log(`${side}² uint16 chunk, ${raw.byteLength} B: zstd level 3 ${cz.byteLength} B, lz4 ${cl.byteLength} B, gzip level 5 ${cg.byteLength} B`);
    console.log(`  zstd  numcodecs (wasm)              ${await speed(() => nZstd.decode(cz), raw.byteLength)}`);
    console.log(`  zstd  fzstd                         ${await speed(() => fzstdDecompress(cz), raw.byteLength)}`);
    console.log(`  zstd  libzstd, fresh memory         ${await speed(() => zstd.decode(cz, raw.byteLength), raw.byteLength)}`);
    console.log(`  zstd  libzstd, reused memory        ${await speed(() => zstd.decode(cz, raw.byteLength, () => reused), raw.byteLength)}`);
    console.log(`  lz4   numcodecs (wasm)              ${await speed(() => nLz4.decode(cl), raw.byteLength)}`);
    console.log(`  lz4   liblz4, fresh memory          ${await speed(() => lz4.decode(cl, raw.byteLength), raw.byteLength)}`);
    console.log(`  lz4   liblz4, reused memory         ${await speed(() => lz4.decode(cl, raw.byteLength, () => reused), raw.byteLength)}`);
    console.log(`  gzip  zarrita (DecompressionStream) ${await speed(() => zGzip.decode(cg), raw.byteLength)}`);
    console.log(`  gzip  node:zlib                    ${await speed(() => gzip.decode(cg, raw.byteLength), raw.byteLength)}`);
    console.log(`  zlib  zarrita (DecompressionStream) ${await speed(() => zZlib.decode(cd), raw.byteLength)}`);
    console.log(`  zlib  node:zlib                    ${await speed(() => zlib.decode(cd, raw.byteLength), raw.byteLength)}`);
  }
}

void main();
