import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { openNodeZlib } from '../src/deflate-codec';
import { chunkFiles } from './whole-array';
import { codecVariantFixtures } from '../../../test/support/zarr-fixtures';

// gzip and zlib chunks written by Python's zarr (numcodecs.GZip, numcodecs.Zlib), decoded by node's
// zlib: the first chunk of each equals the samples numpy wrote beside it (the whole arrays through
// zarrita: zarr-codecs.test.ts).

const fixtures = codecVariantFixtures();
const CHUNK_BYTES = 2 * 256 * 192 * 2;

/** Chunk 0.0.0 of a 3 × 300 × 260 uint16 fixture (chunks 2 × 256 × 192): its samples cut from the .raw file. */
function firstChunkSamples(name: string): Buffer {
  const raw = readFileSync(join(fixtures.dir, 'v2', `${name}.raw`));
  const out = Buffer.alloc(CHUNK_BYTES);
  for (let z = 0; z < 2; z++) for (let y = 0; y < 256; y++) raw.copy(out, (z * 256 + y) * 192 * 2, ((z * 300 + y) * 260) * 2, ((z * 300 + y) * 260 + 192) * 2);
  return out;
}
const firstChunk = (name: string) => new Uint8Array(readFileSync(chunkFiles(join(fixtures.dir, 'v2', name))[0]!));

describe.each([
  ['gzip', 'gzip-5-uint16'],
  ['zlib', 'zlib-5-uint16'],
] as const)('%s by node:zlib', (format, name) => {
  const deflate = openNodeZlib(format);

  it('says what it is', () => {
    expect(deflate.description).toBe(`node:zlib ${process.versions.zlib} (${format})`);
  });

  it('decodes a chunk Python\'s zarr wrote to the samples numpy wrote, with exactly the chunk\'s bytes allowed', () => {
    const chunk = firstChunk(name);
    expect(Buffer.compare(Buffer.from(deflate.decode(chunk, CHUNK_BYTES)), firstChunkSamples(name))).toBe(0);
  });

  it('a chunk that decodes to more than the chunk\'s bytes is stopped there, a bomb too', () => {
    expect(() => deflate.decode(firstChunk(name), CHUNK_BYTES - 1)).toThrow(`the chunk's ${format} stream decodes to more than its ${CHUNK_BYTES - 1} bytes (chunk shape × sample size)`);
    // 256 MB of zeros in 255 KB of gzip (zlib: the same deflate in a zlib stream).
    const zeros = Buffer.alloc(256 << 20);
    const bomb = format === 'gzip' ? gzipSync(zeros, { level: 9 }) : deflateSync(zeros, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(300_000);
    expect(() => deflate.decode(bomb, CHUNK_BYTES)).toThrow(`decodes to more than its ${CHUNK_BYTES} bytes`);
  });

  it('a truncated, a corrupted and a foreign chunk: a clear error', () => {
    const good = firstChunk(name);
    expect(() => deflate.decode(good.subarray(0, good.byteLength - 100), CHUNK_BYTES)).toThrow(`zlib could not decode the chunk as ${format}: unexpected end of file (corrupt or truncated)`);
    const broken = good.slice();
    broken.fill(0xff, 20, 40);
    expect(() => deflate.decode(broken, CHUNK_BYTES)).toThrow(new RegExp(`^zlib could not decode the chunk as ${format}: .+ \\(corrupt or truncated\\)$`));
    expect(() => deflate.decode(new Uint8Array(Buffer.from('not deflate at all')), CHUNK_BYTES)).toThrow(`zlib could not decode the chunk as ${format}: incorrect header check (corrupt or truncated)`);
  });
});
