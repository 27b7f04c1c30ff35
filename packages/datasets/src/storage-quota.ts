import { randomBytes } from 'node:crypto';
import { TilefarmError } from '@tilefarm/contracts';
import type { DatasetCatalog } from './dataset-catalog';

/**
 * A tenant's storage quota as one ingest meets it (plain JSON: it travels in a queued ingest's
 * plan). The measure is bytes actually written to storage, on every ingest path: the CLI, queued
 * files, OME-Zarr copies (a linked Zarr writes no source tiles and counts 0).
 */
export interface IngestQuota {
  tenant: string;
  /** The tenant's quota (TENANT_STORAGE_QUOTA_MB). */
  quotaBytes: number;
  /** What was left when the ingest started: no ingest may write more. */
  leftBytes: number;
}

const mb = (n: number) => `${Math.ceil(n / 2 ** 20)} MB`;

function exceeded(tenant: string, used: number, quotaBytes: number, what: string): TilefarmError {
  return new TilefarmError('quota_exceeded', `tenant "${tenant}" has ${mb(used)} of ${mb(quotaBytes)} stored; ${what} (bytes written to storage)`);
}

/**
 * The quota an ingest of `id` by `tenant` starts with: undefined without a quota or for public
 * datasets (written only with the operator token); refused at once when nothing is left. The
 * dataset being replaced does not count (its old version is deleted after the grace period).
 */
export async function startIngestQuota(catalog: DatasetCatalog, tenant: string, id: string, quotaBytes: number | undefined): Promise<IngestQuota | undefined> {
  if (quotaBytes === undefined || tenant === 'public') return undefined;
  const used = await catalog.tenantStoredBytes(tenant, id);
  if (used >= quotaBytes) throw exceeded(tenant, used, quotaBytes, 'nothing is left for another ingest');
  return { tenant, quotaBytes, leftBytes: quotaBytes - used };
}

/**
 * Counts the bytes an ingest writes. Past what its quota left, `add` throws quota_exceeded: the
 * ingest stops (a few tiles in flight past the bound at most) and publishes nothing.
 */
export class WrittenBytes {
  total = 0;

  constructor(private readonly quota?: IngestQuota) {}

  add(bytes: number): void {
    this.total += bytes;
    const q = this.quota;
    if (q && this.total > q.leftBytes) throw exceeded(q.tenant, q.quotaBytes - q.leftBytes, q.quotaBytes, `this ingest stopped after writing ${mb(this.total)}`);
  }
}

/** What an ingest about to publish asks the shared reservations for (TenantQuotaReservations in @tilefarm/queue). */
export interface QuotaReserveRequest {
  tenant: string;
  /** This publish, unique (released by the same name). */
  holder: string;
  /** What the ingest wrote. */
  bytes: number;
  /** The tenant's stored bytes as read after `generation`, leaving out the dataset replaced. */
  usedBytes: number;
  quotaBytes: number;
  generation: string;
}
export type QuotaReserveResult = { kind: 'reserved' } | { kind: 'changed' } | { kind: 'over'; takenBytes: number };

/**
 * Reservations of the tenant quota shared by every process that publishes (Redis): reading the
 * usage and publishing are two steps, so two ingests of one tenant finishing at once would both
 * pass on the usage from before either published. A reservation counts every other one in flight
 * and is refused ('changed') if the tenant published anything since its usage was read.
 */
export interface QuotaReservations {
  generation(tenant: string): Promise<string>;
  reserve(request: QuotaReserveRequest): Promise<QuotaReserveResult>;
  /** `published`: the tenant's usage changed (bumps the generation). */
  release(tenant: string, holder: string, published: boolean): Promise<void>;
}

/** Reads of usage again after another publish of the tenant got in between; then the quota is refused as busy. */
const RESERVE_ATTEMPTS = 20;

/**
 * Publishes within the quota: the tenant's usage read again (another of its ingests may have
 * published meanwhile) plus what this one wrote, against the quota. With `reservations` (every
 * deployment: workers and the CLI share Redis), the check and the publish are one step for the
 * tenant: see QuotaReservations. Without (tests, tools alone), check then publish.
 */
export async function publishWithinQuota<T>(catalog: DatasetCatalog, id: string, quota: IngestQuota | undefined, written: number, publish: () => Promise<T>, reservations?: QuotaReservations): Promise<T> {
  if (!quota) return publish();
  if (!reservations) {
    const used = await catalog.tenantStoredBytes(quota.tenant, id);
    if (used + written > quota.quotaBytes) throw exceeded(quota.tenant, used, quota.quotaBytes, `this ingest wrote ${mb(written)}`);
    return publish();
  }
  const holder = `${id}:${randomBytes(6).toString('hex')}`;
  for (let attempt = 0; attempt < RESERVE_ATTEMPTS; attempt++) {
    const generation = await reservations.generation(quota.tenant);
    const used = await catalog.tenantStoredBytes(quota.tenant, id);
    const r = await reservations.reserve({ tenant: quota.tenant, holder, bytes: written, usedBytes: used, quotaBytes: quota.quotaBytes, generation });
    if (r.kind === 'changed') continue;
    if (r.kind === 'over') throw exceeded(quota.tenant, r.takenBytes, quota.quotaBytes, `this ingest wrote ${mb(written)} (counting ingests of the tenant publishing now)`);
    let published = false;
    try {
      const result = await publish();
      published = true;
      return result;
    } finally {
      // Redis gone: the reservation expires by itself; the publish's own outcome stands.
      await reservations.release(quota.tenant, holder, published).catch(() => undefined);
    }
  }
  throw new TilefarmError('unavailable', `tenant "${quota.tenant}" is publishing many datasets at once; try again`);
}
