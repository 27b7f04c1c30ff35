import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_CHUNK_BYTES } from '@tilefarm/zarr';
import { openLiblz4 } from '../src/lz4-codec';
import { chunkFiles, decodeLikeNumcodecs, numcodecsCodec } from './whole-array';
import { codecVariantFixtures } from '../../../test/support/zarr-fixtures';

// lz4 chunks (numcodecs' LZ4 format: 4-byte little-endian decoded size, one LZ4 block) written by
// Python's zarr / numcodecs, decoded by liblz4 through koffi and by numcodecs' wasm build (zarrita's
// default): byte for byte the same. (Through zarrita, against numpy's samples: zarr-codecs.test.ts.)

const fixtures = codecVariantFixtures();
const lz4Dirs = fixtures.variants.filter((v) => v.codec === 'lz4').map((v) => join(fixtures.dir, v.kind, v.name));

const firstChunk = () => new Uint8Array(readFileSync(chunkFiles(join(fixtures.dir, 'v2', 'lz4-1-uint16'))[0]!));

describe('lz4 by liblz4 (koffi)', () => {
  const lz4 = openLiblz4();

  it('loads Debian liblz4-1 and says so', () => {
    expect(lz4.description).toMatch(/^liblz4 1\.\d+\.\d+ \(liblz4\.so\.1\)$/);
  });

  it('every chunk file of every lz4 variant: liblz4 and numcodecs decode the same bytes', async () => {
    const chunks = await decodeLikeNumcodecs(lz4, await numcodecsCodec('lz4', { acceleration: 1 }), lz4Dirs, fixtures.dir, (decoded, bytes) =>
      expect(decoded.byteLength).toBe(Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32LE(0)),
    );
    // 3 v2 and 1 v3 arrays of 8 chunks: accelerations 1 and 8; uint16, uint8; noise (literals only).
    expect(chunks).toBe(32);
  });

  it('decodes into the memory it is given, exactly the declared size; a chunk that is a view of a larger read decodes the same', () => {
    const bytes = firstChunk();
    const sizes: number[] = [];
    const given = Buffer.alloc(1 << 20, 0xcd);
    const out = lz4.decode(bytes, MAX_CHUNK_BYTES, (size) => (sizes.push(size), new Uint8Array(given.buffer, given.byteOffset, size)));
    expect(out.buffer).toBe(given.buffer);
    expect(sizes).toEqual([2 * 256 * 192 * 2]);
    const inRead = Buffer.concat([Buffer.alloc(37, 0xee), bytes, Buffer.alloc(11, 0xee)]).subarray(37, 37 + bytes.byteLength);
    expect(Buffer.compare(lz4.decode(new Uint8Array(inRead.buffer, inRead.byteOffset, inRead.byteLength), MAX_CHUNK_BYTES), out)).toBe(0);
  });

  it('a truncated, a non-lz4 and a corrupted chunk: a clear error, never zeros', () => {
    const good = firstChunk();
    expect(() => lz4.decode(good.subarray(0, good.byteLength - 100), MAX_CHUNK_BYTES)).toThrow(/^liblz4 could not decode the chunk \(error -\d+\): its block is corrupt or truncated$/);
    expect(() => lz4.decode(new Uint8Array(3), MAX_CHUNK_BYTES)).toThrow('not an lz4 chunk: 3 bytes, less than its 4-byte size header');
    // Text is no LZ4 block: its first token asks for more literals than follow.
    expect(() => lz4.decode(new Uint8Array(Buffer.concat([Buffer.from([0, 0, 1, 0]), Buffer.from('not an lz4 chunk at all')])), MAX_CHUNK_BYTES)).toThrow(/^liblz4 could not decode the chunk \(error -\d+\)/);
    // A header declaring more than the block holds: refused, not padded.
    const longer = good.slice();
    Buffer.from(longer.buffer).writeUInt32LE(2 * 256 * 192 * 2 + 10, 0);
    expect(() => lz4.decode(longer, MAX_CHUNK_BYTES)).toThrow(`liblz4 decoded ${2 * 256 * 192 * 2} bytes, the chunk's header declares ${2 * 256 * 192 * 2 + 10} (truncated)`);
    // One declaring less: the block does not fit, refused.
    const shorter = good.slice();
    Buffer.from(shorter.buffer).writeUInt32LE(1000, 0);
    expect(() => lz4.decode(shorter, MAX_CHUNK_BYTES)).toThrow(/^liblz4 could not decode the chunk \(error -\d+\)/);
  });

  it('a header declaring more decoded bytes than the chunk can hold is refused before anything is allocated', () => {
    const good = firstChunk();
    const declared = 2 * 256 * 192 * 2;
    expect(lz4.decode(good, declared).byteLength).toBe(declared);
    const allocations: number[] = [];
    expect(() => lz4.decode(good, declared - 1, (size) => (allocations.push(size), new Uint8Array(size)))).toThrow(`the chunk's lz4 header declares ${declared} decoded bytes, more than its ${declared - 1} (chunk shape × sample size)`);
    expect(allocations).toEqual([]);
    // A hostile header: 4 GB declared by an 8-byte chunk.
    const hostile = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    expect(() => lz4.decode(hostile, MAX_CHUNK_BYTES)).toThrow(`the chunk's lz4 header declares ${0xffffffff} decoded bytes, more than its ${MAX_CHUNK_BYTES}`);
  });
});
