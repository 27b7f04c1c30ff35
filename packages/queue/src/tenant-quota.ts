import type { QuotaReservations, QuotaReserveRequest, QuotaReserveResult } from '@tilefarm/datasets';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';

/**
 * The tenant storage quota's publish step, shared by every process that publishes datasets
 * (workers, the ingest CLI): an ingest about to publish reserves what it wrote against the
 * tenant's usage plus every other reservation in flight, atomically (Lua), and releases it once
 * published (or failed). A publish bumps the tenant's generation, so a reservation checked against
 * usage read before that publish is refused and reads it again: two ingests of one tenant at once
 * can no longer both pass on the old usage. A reservation whose holder died expires after ttlMs.
 */
export class TenantQuotaReservations implements QuotaReservations {
  constructor(
    private readonly prefix: string,
    private readonly redis: RedisClient,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  private keys(tenant: string): [string, string] {
    return [`${this.prefix}:quota-reserved:${tenant}`, `${this.prefix}:quota-generation:${tenant}`];
  }

  async generation(tenant: string): Promise<string> {
    return (await this.redis.get(this.keys(tenant)[1])) ?? '0';
  }

  async reserve(r: QuotaReserveRequest): Promise<QuotaReserveResult> {
    const [status, taken] = (await RESERVE.run(this.redis, [...this.keys(r.tenant), r.holder, r.bytes, r.usedBytes, r.quotaBytes, r.generation, Date.now(), this.ttlMs])) as [number, number];
    if (status === 1) return { kind: 'reserved' };
    if (status === -1) return { kind: 'changed' };
    return { kind: 'over', takenBytes: Number(taken) };
  }

  async release(tenant: string, holder: string, published: boolean): Promise<void> {
    await RELEASE.run(this.redis, [...this.keys(tenant), holder, published ? '1' : '0']);
  }
}

const RESERVE = RedisScript.fromFile('tenant-quota-reserve.keys-2.lua');
const RELEASE = RedisScript.fromFile('tenant-quota-release.keys-2.lua');
