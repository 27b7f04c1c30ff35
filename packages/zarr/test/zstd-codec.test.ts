import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_CHUNK_BYTES } from '@tilefarm/zarr';
import { openLibzstd } from '../src/zstd-codec';
import { chunkFiles, decodeLikeNumcodecs, numcodecsCodec } from './whole-array';
import { codecVariantFixtures } from '../../../test/support/zarr-fixtures';

// zstd chunks written by Python's zarr / numcodecs (independent of us and of zarrita), decoded by
// libzstd through koffi and by numcodecs' wasm build (zarrita's default): byte for byte the same.
// (Through zarrita, against the samples numpy wrote: zarr-codecs.test.ts.)

const fixtures = codecVariantFixtures();
const zstdDirs = fixtures.variants.filter((v) => v.codec === 'zstd').map((v) => join(fixtures.dir, v.kind, v.name));

const firstChunk = () => new Uint8Array(readFileSync(chunkFiles(join(fixtures.dir, 'v2', 'zstd-3-uint16'))[0]!));

/** The same frame with its content size left out of the header, as streaming writers leave it. */
function withoutContentSize(frame: Uint8Array, decodedBytes: number): Uint8Array {
  // numcodecs writes a single-segment frame with a 4-byte size: magic (4), descriptor 0xA0, size (4).
  expect(frame[4]).toBe(0xa0);
  const windowLog = Math.max(10, Math.ceil(Math.log2(decodedBytes)));
  // Descriptor 0: no size, not single-segment, so a window descriptor (exponent windowLog - 10) follows.
  return Buffer.concat([frame.subarray(0, 4), Buffer.from([0x00, (windowLog - 10) << 3]), frame.subarray(9)]);
}

describe('zstd by libzstd (koffi)', () => {
  const zstd = openLibzstd();

  it('loads Debian libzstd1 and says so', () => {
    expect(zstd.description).toMatch(/^libzstd 1\.\d+\.\d+ \(libzstd\.so\.1\)$/);
  });

  it('every chunk file of every zstd variant: libzstd and numcodecs decode the same bytes', async () => {
    const chunks = await decodeLikeNumcodecs(zstd, await numcodecsCodec('zstd', { level: 3 }), zstdDirs, fixtures.dir, (decoded) => expect(decoded.byteLength).toBeGreaterThan(100_000));
    // 4 v2 and 2 v3 arrays of 8 chunks: levels 1, 3, 19; uint16, float32; noise (raw blocks).
    expect(chunks).toBe(48);
  });

  it('decodes into the memory it is given, exactly the declared size', () => {
    const bytes = firstChunk();
    const sizes: number[] = [];
    const given = Buffer.alloc(1 << 20, 0xcd);
    const out = zstd.decode(bytes, MAX_CHUNK_BYTES, (size) => (sizes.push(size), new Uint8Array(given.buffer, given.byteOffset, size)));
    expect(out.buffer).toBe(given.buffer);
    expect(sizes).toEqual([2 * 256 * 192 * 2]);
    expect(Buffer.compare(out, zstd.decode(bytes, MAX_CHUNK_BYTES))).toBe(0);
  });

  it('a frame that does not declare its size decodes into at most the chunk\'s bytes', () => {
    const bytes = firstChunk();
    const expected = zstd.decode(bytes, MAX_CHUNK_BYTES);
    const streamed = withoutContentSize(bytes, expected.byteLength);
    expect(Buffer.compare(zstd.decode(streamed, expected.byteLength), expected)).toBe(0);
    expect(Buffer.compare(zstd.decode(streamed, MAX_CHUNK_BYTES), expected)).toBe(0);
    expect(() => zstd.decode(streamed, expected.byteLength - 1)).toThrow(`the chunk's zstd frame decodes to more than its ${expected.byteLength - 1} bytes (chunk shape × sample size)`);
  });

  it('a truncated, a non-zstd and a corrupted chunk: a clear error, never zeros', () => {
    const good = firstChunk();
    expect(() => zstd.decode(good.subarray(0, good.byteLength - 100), MAX_CHUNK_BYTES)).toThrow(/^libzstd could not decode the chunk: .+ \(corrupt or truncated\)$/);
    expect(() => zstd.decode(new Uint8Array(Buffer.from('not a zstd chunk at all')), MAX_CHUNK_BYTES)).toThrow('not a zstd chunk: its first bytes are not a zstd frame header');
    expect(() => zstd.decode(new Uint8Array(3), MAX_CHUNK_BYTES)).toThrow('not a zstd chunk: 3 bytes, less than a zstd frame header');
    // The first block's header (after magic, descriptor and size) made a reserved block type.
    const broken = good.slice();
    broken.fill(0xff, 9, 12);
    expect(() => zstd.decode(broken, MAX_CHUNK_BYTES)).toThrow(/^libzstd could not decode the chunk: .+ \(corrupt or truncated\)$/);
  });

  it('a frame declaring more decoded bytes than the chunk can hold is refused before anything is allocated', () => {
    const good = firstChunk();
    const declared = Buffer.from(good.buffer, good.byteOffset, good.byteLength).readUInt32LE(5);
    expect(declared).toBe(2 * 256 * 192 * 2);
    expect(zstd.decode(good, declared).byteLength).toBe(declared);
    const allocations: number[] = [];
    expect(() => zstd.decode(good, declared - 1, (size) => (allocations.push(size), new Uint8Array(size)))).toThrow(`the chunk's zstd frame declares ${declared} decoded bytes, more than its ${declared - 1} (chunk shape × sample size)`);
    expect(allocations).toEqual([]);
    // A hostile header: 4 GB declared by a 13-byte chunk.
    const hostile = good.slice(0, 13);
    Buffer.from(hostile.buffer).writeUInt32LE(0xffffffff, 5);
    expect(() => zstd.decode(hostile, MAX_CHUNK_BYTES)).toThrow(`the chunk's zstd frame declares ${0xffffffff} decoded bytes, more than its ${MAX_CHUNK_BYTES}`);
  });
});
