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

/**
 * Just before publishing: the tenant's usage read again (another of its ingests may have
 * published meanwhile) plus what this one wrote, against the quota.
 */
export async function checkQuotaAtPublish(catalog: DatasetCatalog, id: string, quota: IngestQuota | undefined, written: number): Promise<void> {
  if (!quota) return;
  const used = await catalog.tenantStoredBytes(quota.tenant, id);
  if (used + written > quota.quotaBytes) throw exceeded(quota.tenant, used, quota.quotaBytes, `this ingest wrote ${mb(written)}`);
}
