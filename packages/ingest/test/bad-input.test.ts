import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_SOURCE_PIXELS, IngestError, ingestFile, type IngestProblem } from '@tilefarm/ingest';
import { FIXTURES, storedKeys, tempCatalog, type TempCatalog } from './support/read-back';
import { patternRows, writeTiff, type PageSpec } from './support/tiff-writer';

let tc: TempCatalog;
beforeEach(() => {
  tc = tempCatalog();
});
afterEach(() => tc.cleanup());

const page = (p: number, extra: Partial<PageSpec> = {}): PageSpec => ({ width: 600, height: 400, bits: 16, rows: patternRows(p, 600, 16), rowsPerStrip: 16, compression: 'deflate', ...extra });

/** Ingest must fail with `problem` and a message matching `message`, and leave nothing a viewer could see. */
async function expectRejected(path: string, problem: IngestProblem, message: RegExp, opts: { maxSourcePixels?: number; signal?: AbortSignal } = {}): Promise<{ error: IngestError; tilesWritten: number }> {
  let tilesWritten = 0;
  const onProgress = (p: { done: number }) => {
    tilesWritten = Math.max(tilesWritten, p.done);
  };
  const err = await ingestFile({ path, id: 'bad', catalog: tc.catalog, onProgress, ...opts }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IngestError);
  const e = err as IngestError;
  expect(e.message).toMatch(message);
  expect([e.problem, e.code, e.status]).toEqual([problem, 'source_unreadable', 422]);
  expect(await tc.catalog.find('bad')).toBeUndefined();
  expect(await storedKeys(tc.store, 'catalog/')).toEqual([]);
  // Partial source tiles of the failed version are removed too.
  expect(await storedKeys(tc.store, 'datasets/bad/')).toEqual([]);
  return { error: e, tilesWritten };
}

describe('bad input publishes nothing', () => {
  it('a truncated OME-TIFF (fixture cut in half) fails before any tile is written', async () => {
    const path = join(tc.dir, 'cut.ome.tif');
    copyFileSync(join(FIXTURES, 'cells-3c-10z.ome.tif'), path);
    truncateSync(path, 15_000_000);
    const { tilesWritten } = await expectRejected(path, 'truncated', /page \d+.* but the file has only 15000000 bytes: the file is truncated/);
    expect(tilesWritten).toBe(0);
  });

  it('a file cut inside its first IFD', async () => {
    const path = join(tc.dir, 'head.tif');
    writeFileSync(path, readFileSync(join(FIXTURES, 'pyramid-4c-3z.ome.tif')).subarray(0, 20));
    await expectRejected(path, 'truncated', /truncated|end of file/);
  });

  it('corrupt deflate data in a late page: earlier tiles are written, then deleted', async () => {
    const path = join(tc.dir, 'corrupt.tif');
    writeTiff(path, [0, 1, 2].map((p) => page(p)));
    const bytes = readFileSync(path);
    // Page 2's strips are the last pixel data before the IFDs; clobber the middle of that region.
    const start = Math.floor((bytes.length * 5) / 6);
    bytes.fill(0xa5, start, start + 2000);
    writeFileSync(path, bytes);
    const { tilesWritten } = await expectRejected(path, 'corrupt', /page 2 strip \d+: deflate data is corrupt/);
    expect(tilesWritten).toBeGreaterThan(10);
  });

  it('not an image at all', async () => {
    const path = join(tc.dir, 'notes.txt');
    writeFileSync(path, 'hello, this is not an image');
    await expectRejected(path, 'unsupported', /not a TIFF and sharp cannot read it/);
  });

  it('a missing file', async () => {
    await expectRejected(join(tc.dir, 'nope.tif'), 'not_found', /cannot open/);
  });

  it('OME-XML claiming more planes than there are pages', async () => {
    const path = join(tc.dir, 'short.ome.tif');
    const ome = '<OME><Image ID="Image:0"><Pixels DimensionOrder="XYCZT" Type="uint16" SizeX="600" SizeY="400" SizeZ="5" SizeC="1" SizeT="1"><Channel ID="Channel:0"/></Pixels></Image></OME>';
    writeTiff(path, [0, 1, 2].map((p) => page(p, p === 0 ? { description: ome } : {})));
    await expectRejected(path, 'ome_mismatch', /OME-XML says 5 planes .* but the file has only 3 pages/);
  });

  it('OME-XML disagreeing with the page size', async () => {
    const path = join(tc.dir, 'size.ome.tif');
    const ome = '<OME><Image ID="Image:0"><Pixels DimensionOrder="XYCZT" Type="uint16" SizeX="640" SizeY="400" SizeZ="1" SizeC="1" SizeT="1"/></Image></OME>';
    writeTiff(path, [page(0, { description: ome })]);
    await expectRejected(path, 'ome_mismatch', /OME-XML says planes are 640×400 but page 0 is 600×400/);
  });

  it('OME-XML disagreeing with the pixel type', async () => {
    const path = join(tc.dir, 'type.ome.tif');
    const ome = '<OME><Image ID="Image:0"><Pixels DimensionOrder="XYCZT" Type="uint8" SizeX="600" SizeY="400" SizeZ="1" SizeC="1" SizeT="1"/></Image></OME>';
    writeTiff(path, [page(0, { description: ome })]);
    await expectRejected(path, 'ome_mismatch', /pixel type uint8 but page 0 holds uint16/);
  });

  it('an unsupported OME pixel type', async () => {
    const path = join(tc.dir, 'int16.ome.tif');
    const ome = '<OME><Image ID="Image:0"><Pixels DimensionOrder="XYCZT" Type="int16" SizeX="600" SizeY="400" SizeZ="1" SizeC="1" SizeT="1"/></Image></OME>';
    writeTiff(path, [page(0, { description: ome, sampleFormat: 2 })]);
    await expectRejected(path, 'unsupported', /OME pixel type "int16" is not supported/);
  });

  it('signed 16-bit samples in a plain TIFF', async () => {
    const path = join(tc.dir, 'signed.tif');
    writeTiff(path, [page(0, { sampleFormat: 2 })]);
    await expectRejected(path, 'unsupported', /16-bit signed integer samples are not supported/);
  });

  it('pages of different sizes in a plain stack', async () => {
    const path = join(tc.dir, 'mixed.tif');
    writeTiff(path, [page(0), { ...page(1), width: 300, rows: patternRows(1, 300, 16) }]);
    await expectRejected(path, 'ome_mismatch', /page 1 is 300×400.* but page 0 is 600×400/);
  });

  it('a decompression bomb: a tiny file claiming 200000 × 200000 pixels', async () => {
    const path = join(tc.dir, 'bomb.tif');
    writeTiff(path, [{ ...page(0), rows: (y0, y1) => new Uint16Array((y1 - y0) * 600), rowsPerStrip: 200_000, claimWidth: 200_000, claimHeight: 200_000 }]);
    expect(readFileSync(path).length).toBeLessThan(200_000);
    await expectRejected(path, 'too_large', /200000×200000 .* over the limit of 1000000000 \(maxSourcePixels\)/, { maxSourcePixels: 1e9 });
  });

  // Issue 11 item 4: a tiny file whose strips all point at one deflate strip decoded to hundreds
  // of MB. Aliasing is refused before any write; a written-bytes bound relative to the input
  // catches what aliasing does not; the default pixel cap is sane.
  const zeros = (width: number) => (y0: number, y1: number) => new Uint16Array((y1 - y0) * width);

  it('strips aliasing one deflate strip are refused before any tile is written', async () => {
    const path = join(tc.dir, 'alias-bomb.tif');
    const alias = (offsets: number[], counts: number[]) => {
      offsets.fill(offsets[0]!);
      counts.fill(counts[0]!);
    };
    writeTiff(path, [{ width: 4096, height: 4096, bits: 16, rows: zeros(4096), rowsPerStrip: 64, compression: 'deflate', rewriteChunks: alias }]);
    const { tilesWritten } = await expectRejected(path, 'corrupt', /page 0 strip #\d+ \(bytes \d+–\d+\) overlaps page 0 strip #\d+ .*aliasing, a decompression bomb pattern/);
    expect(tilesWritten).toBe(0);
  });

  it('pages whose strips alias another page\'s strips are refused', async () => {
    const path = join(tc.dir, 'alias-pages.tif');
    let first: { offsets: number[]; counts: number[] } | undefined;
    const share = (offsets: number[], counts: number[]) => {
      if (!first) first = { offsets: [...offsets], counts: [...counts] };
      else offsets.splice(0, offsets.length, ...first.offsets), counts.splice(0, counts.length, ...first.counts);
    };
    writeTiff(path, [0, 1, 2].map((p) => page(p, { rewriteChunks: share })));
    const { tilesWritten } = await expectRejected(path, 'corrupt', /page [12] strip #0 .* overlaps page [01] strip #0 .*aliasing/);
    expect(tilesWritten).toBe(0);
  });

  it('a unit writing more than maxWriteRatio × the bytes it decodes is stopped (default 256, configurable)', async () => {
    // 4096² uint16 zeros: 32 MB of samples (43 MB with the pyramid) from about 35 KB of deflate.
    const path = join(tc.dir, 'zeros.tif');
    writeTiff(path, [{ width: 4096, height: 4096, bits: 16, rows: zeros(4096), rowsPerStrip: 64, compression: 'deflate' }]);
    expect(readFileSync(path).length).toBeLessThan(100_000);
    const { error, tilesWritten } = await expectRejected(path, 'too_large', /page 0: ingest would write more than \d+ bytes from the \d+ bytes of the file it decodes \(over 256× the input, maxWriteRatio\)/);
    const [bound, input] = /more than (\d+) bytes from the (\d+) bytes/.exec(error.message)!.slice(1).map(Number);
    expect(bound).toBe(Math.max(4 * 1024 * 1024, 256 * input!));
    // Stopped at the bound (each tile is 128 KiB of samples), far from the 43 MB it would write.
    expect(tilesWritten * 256 * 256 * 2).toBeLessThanOrEqual(bound!);
    // A deployment that expects such files raises the ratio.
    const m = await ingestFile({ path, id: 'zeros', catalog: tc.catalog, maxWriteRatio: 5000 });
    expect([m.width, m.height]).toEqual([4096, 4096]);
  });

  it('the default pixel cap is sane: 2^37 samples, not 2^40', async () => {
    expect(DEFAULT_MAX_SOURCE_PIXELS).toBe(2 ** 37);
    const path = join(tc.dir, 'claims.tif');
    writeTiff(path, [{ ...page(0), rows: (y0, y1) => new Uint16Array((y1 - y0) * 600), rowsPerStrip: 400_000, claimWidth: 400_000, claimHeight: 400_000 }]);
    await expectRejected(path, 'too_large', /400000×400000 .* = 160000000000 samples, over the limit of 137438953472 \(maxSourcePixels\)/);
  });

  it('a strip that inflates to more than its page declares is refused without allocating it', async () => {
    const path = join(tc.dir, 'inflate-bomb.tif');
    // Declares 600×400 in one strip, but the strip holds 40 MB of zeros (deflates to ~40 KB).
    const spec = page(0, { rowsPerStrip: 400 });
    writeTiff(path, [{ ...spec, rows: (y0, y1) => (y0 === 0 ? new Uint16Array(20_000_000) : spec.rows(y0, y1)) }]);
    await expectRejected(path, 'corrupt', /strip 0: deflate data is corrupt/);
  });

  it('an aborted ingest', async () => {
    const path = join(tc.dir, 'ok.tif');
    writeTiff(path, [0, 1, 2].map((p) => page(p)));
    const ac = new AbortController();
    ac.abort();
    await expectRejected(path, 'aborted', /aborted/, { signal: ac.signal });
  });

  it('a failed re-ingest leaves the published version current and intact', async () => {
    const good = join(tc.dir, 'good.tif');
    writeTiff(good, [page(0)]);
    const v1 = await ingestFile({ path: good, id: 'keep', catalog: tc.catalog });
    const before = await storedKeys(tc.store, 'datasets/keep/v1/');
    const bad = join(tc.dir, 'bad.tif');
    writeTiff(bad, [page(0, { sampleFormat: 2 })]);
    await expect(ingestFile({ path: bad, id: 'keep', catalog: tc.catalog })).rejects.toBeInstanceOf(IngestError);
    expect(await tc.catalog.find('keep')).toEqual(v1);
    expect(await storedKeys(tc.store, 'datasets/keep/v1/')).toEqual(before);
    expect(await storedKeys(tc.store, 'datasets/keep/v2/')).toEqual([]);
  });
});
