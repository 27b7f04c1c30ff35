import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestError, ingestFile } from '@tilefarm/ingest';
import { DatasetCatalog } from '@tilefarm/datasets';
import { LocalObjectStore } from '@tilefarm/storage';
import { runIngestCli as main } from '../../../apps/ingest/src/cli';
import { FIXTURES, firstDifference, readBackPlane, tempCatalog, type TempCatalog } from './support/read-back';
import { pattern, patternRows, writeTiff } from './support/tiff-writer';
import { uniquePrefix } from '../../../test/support/redis';

/**
 * A single-plane TIFF carrying the OME-XML of a multi-plane file (what tools that copy metadata
 * from their input produce): refused as an OME mismatch that names the way forward, and
 * ingested as a plain TIFF with --ignore-ome-xml / ignoreOmeXml, with a warning.
 */

let tc: TempCatalog;
beforeEach(() => {
  tc = tempCatalog();
});
afterEach(() => tc.cleanup());

/** The OME-XML of the shared 3-channel, 10-z fixture (written by an independent tool), as found in its bytes. */
function copiedOmeXml(): string {
  const head = readFileSync(join(FIXTURES, 'cells-3c-10z.ome.tif')).toString('latin1');
  const start = head.indexOf('<?xml');
  const end = head.indexOf('</OME>');
  expect(start).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(start);
  return head.slice(start, end + '</OME>'.length);
}

function writeSinglePlane(): string {
  const path = join(tc.dir, 'one-plane.ome.tif');
  writeTiff(path, [{ width: 1000, height: 800, bits: 16, rows: patternRows(0, 1000, 16), rowsPerStrip: 64, compression: 'deflate', description: copiedOmeXml() }]);
  return path;
}

function expectedPlane(): Uint16Array {
  const out = new Uint16Array(1000 * 800);
  for (let y = 0; y < 800; y++) for (let x = 0; x < 1000; x++) out[y * 1000 + x] = pattern(0, y, x, 65535);
  return out;
}

it('without the flag: an OME mismatch that says how to ingest it anyway', async () => {
  const err = await ingestFile({ path: writeSinglePlane(), id: 'copied', catalog: tc.catalog }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IngestError);
  expect((err as IngestError).problem).toBe('ome_mismatch');
  expect((err as Error).message).toMatch(/OME-XML says 30 planes .* but the file has only 1 pages; .*--ignore-ome-xml.*"ignoreOmeXml": true/);
});

it('with ignoreOmeXml: the pages are read as a plain TIFF, with a warning', async () => {
  const warnings: string[] = [];
  const m = await ingestFile({ path: writeSinglePlane(), id: 'copied', catalog: tc.catalog, ignoreOmeXml: true, onWarning: (w) => warnings.push(w) });
  expect(m).toMatchObject({ width: 1000, height: 800, sizeZ: 1, sizeT: 1, dtype: 'uint16', name: 'one-plane.ome.tif' });
  expect(m.channels).toHaveLength(1);
  expect(m.physicalSize).toBeUndefined();
  expect(warnings).toEqual([expect.stringMatching(/OME-XML was ignored as asked: its 1 page\(s\) were read as a plain TIFF/)]);
  expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 0)).data, expectedPlane())).toBe(-1);
});

it('the CLI: --ignore-ome-xml ingests and prints the warning; without it, exit 1 with the hint', async () => {
  const file = writeSinglePlane();
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  // Its own Redis prefix: the CLI's version counter lives in Redis, and other runs share that Redis.
  const prefix = uniquePrefix('cli');
  expect(await main([file, '--id', 'copied'], { DATA_DIR: join(tc.dir, 'data'), REDIS_PREFIX: prefix }, io)).toBe(1);
  expect(err.join('')).toMatch(/ingest failed: .*--ignore-ome-xml/);
  err.length = 0;
  expect(await main([file, '--id', 'copied', '--ignore-ome-xml'], { DATA_DIR: join(tc.dir, 'data'), REDIS_PREFIX: prefix }, io)).toBe(0);
  expect(err.join('')).toMatch(/^warning: the file's OME-XML was ignored as asked/);
  expect(out.join('')).toMatch(/ingested copied v1: 1000×800, 1 z/);
  expect(await new DatasetCatalog(new LocalObjectStore(join(tc.dir, 'data'))).get('copied')).toMatchObject({ sizeZ: 1 });
});
