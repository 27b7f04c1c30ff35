import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetCatalog } from '@tilefarm/datasets';
import { LocalObjectStore } from '@tilefarm/storage';
import { linkZarr, openZarrImage, statisticsLevel, zarritaLibrary, type ZarrLibrary } from '@tilefarm/zarr';
import { zarrFixtures } from '../../../test/support/zarr-fixtures';
import { placeOf } from './linked-fixture';

const fixtures = zarrFixtures();

/** zarritaLibrary, counting each chunk's reads by array path and chunk coordinates. */
function countingLibrary(reads: Map<string, number>): ZarrLibrary {
  return {
    ...zarritaLibrary,
    async openArray(store, path, zarrFormat) {
      const array = await zarritaLibrary.openArray(store, path, zarrFormat);
      return {
        ...array,
        getChunk(coords, planes) {
          const key = `${path}:${coords.join('.')}`;
          reads.set(key, (reads.get(key) ?? 0) + 1);
          return array.getChunk(coords, planes);
        },
      };
    },
  };
}

describe('registering an OME-Zarr reads each chunk once per pass', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-register-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a copy of chunks two planes deep (NGFF 0.4 by Python zarr), through a FIFO smaller than the channels of a plane: statistics once, every level once', async () => {
    const opened = await openZarrImage(placeOf(fixtures.ngff04), zarritaLibrary, 'cells-ngff04.zarr', 1e12);
    const { image, arrays } = opened;
    expect(arrays[0]!.chunks[image.axes.indexOf('z')]).toBe(2);
    const reads = new Map<string, number>();
    const progress: Array<[number, number]> = [];
    const manifest = await linkZarr({
      url: 'cells-ngff04.zarr',
      place: placeOf(fixtures.ngff04),
      library: countingLibrary(reads),
      id: 'copied',
      catalog: new DatasetCatalog(new LocalObjectStore(dir)),
      maxPixels: 1e12,
      copy: true,
      // A plane's chunks of all three channels (~11 MB with every level) do not fit: plane by
      // plane, each chunk was read again for its second plane.
      chunkCacheBytes: 4 << 20,
      onProgress: (done, total) => void progress.push([done, total]),
    });
    expect(manifest.levels).toBe(arrays.length);
    const stats = statisticsLevel(image);
    let expected = 0;
    arrays.forEach((a, k) => {
      const count = a.shape.reduce((n, size, i) => n * Math.ceil(size / a.chunks[i]!), 1);
      expected += count * (k === stats ? 2 : 1);
    });
    expect([...reads.values()].reduce((a, b) => a + b, 0)).toBe(expected);
    expect(Math.max(...reads.values())).toBe(2);
    const [done, total] = progress[progress.length - 1]!;
    expect(done).toBe(total);
  });
});
