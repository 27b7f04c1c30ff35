import { join } from 'node:path';
import { ingestFile } from '@tilefarm/ingest';
import { IngestTracker, RedisIngestCoordination, RetiredVersions, TenantQuotaReservations, createRedis, type RedisClient } from '@tilefarm/queue';
import { REDIS_URL, dropPrefix, uniquePrefix } from '../../../test/support/redis';
import { storedKeys, tempCatalog, type TempCatalog } from './support/read-back';
import { patternRows, writeTiff } from './support/tiff-writer';

// Issue 11, tenant quota: two ingests of different ids by one tenant at once both read the usage
// from before either published, so together they passed TENANT_STORAGE_QUOTA_MB. With the
// reservations in Redis (every worker and the CLI share them) the second is refused.

let tc: TempCatalog;
let redis: RedisClient;
let prefix: string;
beforeEach(() => {
  tc = tempCatalog();
  prefix = uniquePrefix('quota');
  redis = createRedis(REDIS_URL, 'producer');
});
afterEach(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
  tc.cleanup();
});

describe('two ingests of one tenant at once', () => {
  it('cannot both pass the quota on the old usage: one publishes, the other fails quota_exceeded and leaves nothing', async () => {
    const file = join(tc.dir, 'page.tif');
    writeTiff(file, [{ width: 700, height: 600, bits: 16, rows: patternRows(3, 700, 16) }]);
    // One dataset's size in storage (same file, same bytes), as the quota counts it.
    const one = (await ingestFile({ path: file, id: 'probe', tenant: 'sizer', catalog: tc.catalog })).storedBytes!;
    const quota = Math.floor(one * 1.5); // room for one more, not two
    const coordination = new RedisIngestCoordination(new IngestTracker(prefix, redis), new RetiredVersions(prefix, redis), 60_000);
    const reservations = new TenantQuotaReservations(prefix, redis);
    const ingest = (id: string) => ingestFile({ path: file, id, tenant: 'lab', catalog: tc.catalog, tenantQuotaBytes: quota, coordination, quotaReservations: reservations });

    for (let round = 0; round < 3; round++) {
      const ids = [`a${round}`, `b${round}`];
      const outcomes = await Promise.allSettled(ids.map(ingest));
      const published = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code?: string }] : []));
      expect(published).toHaveLength(1);
      expect(refused).toEqual([expect.objectContaining({ code: 'quota_exceeded' })]);
      expect(await tc.catalog.tenantStoredBytes('lab')).toBe(one);
      expect(await tc.catalog.tenantStoredBytes('lab')).toBeLessThanOrEqual(quota);
      // The refused one left no tiles behind; the published one is removed for the next round.
      const loser = ids[outcomes.findIndex((o) => o.status === 'rejected')]!;
      expect(await storedKeys(tc.store, `datasets/${loser}/`)).toEqual([]);
      await tc.catalog.unpublish(ids[outcomes.findIndex((o) => o.status === 'fulfilled')]!);
    }
    // Nothing is left reserved once both are done.
    expect(await redis.hlen(`${prefix}:quota-reserved:lab`)).toBe(0);
  });
});
