import { join } from 'node:path';
import { DatasetCatalog, WrittenBytes, pyramidPixelBytes } from '@tilefarm/datasets';
import { finishIngest, ingestFile, ingestPlane, planIngest } from '@tilefarm/ingest';
import type { ObjectStore } from '@tilefarm/storage';
import { storedKeys, tempCatalog, type TempCatalog } from './support/read-back';
import { patternRows, writeTiff } from './support/tiff-writer';

// Issue 11: the per-tenant quota counted the uncompressed pyramid, and the CLI ingest never met
// it. It counts the bytes an ingest writes to storage, on every path that writes a dataset.

const MB = 2 ** 20;
let tc: TempCatalog;
beforeEach(() => {
  tc = tempCatalog();
});
afterEach(() => tc.cleanup());

/** What storage holds for a dataset version, summed from its objects (not from anything ingest reports). */
async function bytesInStorage(store: ObjectStore, id: string, version: number): Promise<number> {
  let total = 0;
  for (const key of await storedKeys(store, `datasets/${id}/v${version}/`)) {
    // Only the source tiles: the manifest and statistics are the catalog's, not the pixels'.
    if (!/\/(manifest|stats)\.json$/.test(key)) total += (await store.head(key))!.size;
  }
  return total;
}

/** A 1024² uint16 page: 2 MB of level-0 samples, ~2.7 MB of pyramid. `flat`: one value (deflates to almost nothing). */
function page(path: string, flat: boolean): string {
  writeTiff(path, [{ width: 1024, height: 1024, bits: 16, rows: flat ? (y0, y1) => new Uint16Array((y1 - y0) * 1024).fill(700) : patternRows(1, 1024, 16), rowsPerStrip: 64, compression: 'deflate' }]);
  return path;
}

describe('the tenant storage quota counts bytes written', () => {
  it('records in the manifest the bytes the ingest stored, as storage itself counts them', async () => {
    const m = await ingestFile({ path: page(join(tc.dir, 'a.tif'), false), id: 'a', tenant: 'lab', catalog: tc.catalog });
    expect(m.storedBytes).toBeGreaterThan(2 * MB);
    expect(m.storedBytes).toBe(await bytesInStorage(tc.store, 'a', 1));
  });

  it('admits a compressible dataset that is small in storage though large uncompressed', async () => {
    const deflating = new DatasetCatalog(tc.store, 0, 'raw-deflate-v1');
    const m = await ingestFile({ path: page(join(tc.dir, 'flat.tif'), true), id: 'flat', tenant: 'lab', catalog: deflating, tenantQuotaBytes: 1 * MB });
    // The uncompressed measure (what the quota counted before) is over the 1 MB quota; storage holds far less.
    expect(pyramidPixelBytes({ ...m, sizeC: 1 })).toBeGreaterThan(2 * MB);
    expect(m.storedBytes).toBe(await bytesInStorage(tc.store, 'flat', 1));
    expect(m.storedBytes).toBeLessThan(0.1 * MB);
    expect(await deflating.tenantStoredBytes('lab')).toBe(m.storedBytes);
  });

  it('stops an ingest that writes past the quota: quota_exceeded naming the figures, nothing published or left behind', async () => {
    const err = await ingestFile({ path: page(join(tc.dir, 'big.tif'), false), id: 'big', tenant: 'lab', catalog: tc.catalog, tenantQuotaBytes: 1 * MB }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'quota_exceeded', message: expect.stringMatching(/^tenant "lab" has 0 MB of 1 MB stored; this ingest stopped after writing 2 MB \(bytes written to storage\)$/) });
    expect(await tc.catalog.find('big')).toBeUndefined();
    expect(await storedKeys(tc.store, 'datasets/big/')).toEqual([]);
  });

  it("counts the tenant's other datasets but not the one replaced, nor public ones, nor other tenants'", async () => {
    const small = join(tc.dir, 'small.tif');
    writeTiff(small, [{ width: 300, height: 200, bits: 16, rows: patternRows(2, 300, 16) }]);
    const a = await ingestFile({ path: small, id: 'small-a', tenant: 'lab', catalog: tc.catalog });
    await ingestFile({ path: small, id: 'pub', catalog: tc.catalog });
    await ingestFile({ path: small, id: 'theirs', tenant: 'other', catalog: tc.catalog });
    const quota = a.storedBytes!;
    expect(await tc.catalog.tenantStoredBytes('lab')).toBe(quota);
    // Full: another dataset is refused before a pixel is read…
    const full = await ingestFile({ path: small, id: 'small-b', tenant: 'lab', catalog: tc.catalog, tenantQuotaBytes: quota }).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: 'quota_exceeded', message: expect.stringContaining('nothing is left for another ingest') });
    expect(await storedKeys(tc.store, 'datasets/small-b/')).toEqual([]);
    // …while re-ingesting the same dataset replaces it, so its old bytes do not count.
    expect(await ingestFile({ path: small, id: 'small-a', tenant: 'lab', catalog: tc.catalog, tenantQuotaBytes: quota })).toMatchObject({ version: 2, storedBytes: quota });
  });

  it('queued ingests (units apart, then finish) check the sum of what every unit wrote before publishing', async () => {
    const path = join(tc.dir, 'two.tif');
    writeTiff(path, [0, 1].map((p) => ({ width: 512, height: 512, bits: 16 as const, rows: patternRows(p, 512, 16) })));
    const plan = await planIngest({ path, id: 'two', tenant: 'lab', catalog: tc.catalog, tenantQuotaBytes: 1 * MB });
    expect(plan.layout.units).toHaveLength(2);
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan); // the quota travels in the plan
    // Each unit, as on two workers: ~0.67 MB each, under the quota alone, over it together.
    const units = await Promise.all([0, 1].map(async (i) => {
      const written = new WrittenBytes(plan.quota);
      return { planes: await ingestPlane(plan, i, { catalog: tc.catalog, written }), bytes: written.total };
    }));
    expect(units.every((u) => u.bytes < 1 * MB)).toBe(true);
    const total = units[0]!.bytes + units[1]!.bytes;
    expect(total).toBe(await bytesInStorage(tc.store, 'two', plan.version));
    const err = await finishIngest(plan, units.flatMap((u) => u.planes), tc.catalog, total).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'quota_exceeded', message: expect.stringContaining('this ingest wrote 2 MB') });
    expect(await tc.catalog.find('two')).toBeUndefined();
  });
});
