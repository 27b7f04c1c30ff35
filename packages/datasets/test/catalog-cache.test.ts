import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { DatasetCatalog, createSyntheticDataset } from '@tilefarm/datasets';

// Issue 11 item 9: the API's dataset cache must not grow with every distinct missing id a client
// invents (no token needed in an open system); a missing id is remembered only briefly.

describe('DatasetCatalog cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-catalog-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stays bounded under many distinct missing ids (dataset, version and statistics lookups)', async () => {
    const catalog = new DatasetCatalog(new LocalObjectStore(dir), 60_000, undefined, { maxEntries: 500 });
    for (let i = 0; i < 20_000; i++) {
      await catalog.find(`missing-${i}`);
      await catalog.getStats(`missing-${i}`, 1);
    }
    expect(catalog.cachedEntries).toBeLessThanOrEqual(3 * 500);
  });

  it('remembers a missing id only briefly, and a present one for the full time', async () => {
    const store = new LocalObjectStore(dir);
    const reader = new DatasetCatalog(store, 60_000, undefined, { negativeTtlMs: 100 });
    expect(await reader.find('late')).toBeUndefined();
    // Another process publishes it.
    await createSyntheticDataset(new DatasetCatalog(store, 0), { id: 'late', width: 64, height: 64, sizeZ: 1, tileSize: 256, dtype: 'uint8' });
    await new Promise((r) => setTimeout(r, 150));
    expect((await reader.find('late'))?.id).toBe('late');
  });
});
