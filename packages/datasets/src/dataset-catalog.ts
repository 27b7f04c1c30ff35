import {
  DatasetId,
  DatasetManifest,
  DatasetOwnerRecord as OwnerRecord,
  DatasetStats,
  TilefarmError,
  describeZodError,
  type SourceEncoding,
  type SourceTile,
} from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import { catalogKey, catalogPrefix, ownerRecordKey, renderedVersionPrefixes, sourceTileKey, statsKey, versionManifestKey, versionPrefix, type SourceTilePosition } from './storage-layout';
import { BoundedCache } from './bounded-cache';
import { pyramidPixelBytes } from './pyramid';
import { DEFAULT_SOURCE_ENCODING, encodeSourceTileAs } from './source-tile-codec';

function parseJson<T>(bytes: Buffer, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${what} is invalid: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

export interface CatalogCacheLimits {
  /** Entries per cache (current manifests, version manifests, statistics); least recently used go first. */
  maxEntries?: number;
  /**
   * How long "no such dataset" is remembered; default 0 (not at all): another process may publish
   * the id at any moment (a just-finished ingest must open at once), and ids are client input.
   */
  negativeTtlMs?: number;
}

/** Passes over a version's keys before deleteVersion gives up on a delete that keeps failing. */
export const DELETE_PASSES = 4;

/**
 * Datasets in the object store: reading manifests and statistics (cached: a version's files are
 * immutable; the current-version pointer is re-read after `currentTtlMs`), and publishing new
 * versions. Publishing writes the pointer last, in one PUT, so readers see all of a version or none.
 * Every cache is bounded (`CatalogCacheLimits`): the ids looked up come from requests.
 */
export class DatasetCatalog {
  private readonly current: BoundedCache<string, DatasetManifest | undefined>;
  private readonly versions: BoundedCache<string, DatasetManifest>;
  private readonly stats: BoundedCache<string, DatasetStats | undefined>;
  private readonly negativeTtlMs: number;

  constructor(
    private readonly store: ObjectStore,
    private readonly currentTtlMs = 2000,
    /** What putSourceTile writes; writers record it as the manifest's sourceEncoding. */
    readonly sourceEncoding: SourceEncoding = DEFAULT_SOURCE_ENCODING,
    limits: CatalogCacheLimits = {},
  ) {
    const max = limits.maxEntries ?? 10_000;
    this.current = new BoundedCache(max);
    this.versions = new BoundedCache(max);
    this.stats = new BoundedCache(max);
    this.negativeTtlMs = Math.min(limits.negativeTtlMs ?? 0, currentTtlMs);
  }

  /** Entries held by the caches (bounded by 3 × maxEntries). */
  get cachedEntries(): number {
    return this.current.size + this.versions.size + this.stats.size;
  }

  private remember(id: string, manifest: DatasetManifest | undefined): void {
    const ttl = manifest ? this.currentTtlMs : this.negativeTtlMs;
    if (ttl > 0) this.current.set(id, manifest, ttl);
  }

  /** The current manifest, or undefined if there is no such dataset. */
  async find(id: string): Promise<DatasetManifest | undefined> {
    // No dataset can have an id outside the id grammar; such ids never reach the store's key check.
    if (!DatasetId.safeParse(id).success) return undefined;
    const hit = this.current.get(id);
    if (hit) return hit.value;
    const bytes = await this.store.get(catalogKey(id));
    const manifest = bytes ? parseJson(bytes, DatasetManifest, `manifest of ${id}`) : undefined;
    this.remember(id, manifest);
    return manifest;
  }

  /** The current manifest read from storage now, past the cache (before a write decides on it). */
  async findFresh(id: string): Promise<DatasetManifest | undefined> {
    this.current.delete(id);
    return this.find(id);
  }

  async get(id: string): Promise<DatasetManifest> {
    const manifest = await this.find(id);
    if (!manifest) throw new TilefarmError('dataset_not_found', `no dataset "${id}"`);
    return manifest;
  }

  /** A specific version's manifest (immutable, cached forever). */
  async getVersion(id: string, version: number): Promise<DatasetManifest> {
    const cacheKey = `${id}/${version}`;
    const hit = this.versions.get(cacheKey);
    if (hit) return hit.value;
    const bytes = DatasetId.safeParse(id).success ? await this.store.get(versionManifestKey(id, version)) : undefined;
    if (!bytes) throw new TilefarmError('dataset_not_found', `no version ${version} of dataset "${id}"`);
    const manifest = parseJson(bytes, DatasetManifest, `manifest of ${id} v${version}`);
    this.versions.set(cacheKey, manifest);
    return manifest;
  }

  async getStats(id: string, version: number): Promise<DatasetStats | undefined> {
    const cacheKey = `${id}/${version}`;
    const hit = this.stats.get(cacheKey);
    if (hit) return hit.value;
    const bytes = await this.store.get(statsKey(id, version));
    const stats = bytes ? parseJson(bytes, DatasetStats, `statistics of ${id} v${version}`) : undefined;
    // A version's statistics never change once written; their absence may (the ingest publishing).
    this.stats.set(cacheKey, stats, stats ? undefined : this.negativeTtlMs || 1);
    return stats;
  }

  async list(options: { fresh?: boolean } = {}): Promise<DatasetManifest[]> {
    const out: DatasetManifest[] = [];
    for await (const key of this.store.list(catalogPrefix)) {
      const id = key.slice(catalogPrefix.length, -'.json'.length);
      if (options.fresh) this.current.delete(id);
      const manifest = await this.find(id);
      if (manifest) out.push(manifest);
    }
    return out;
  }

  /** The highest version `id` has had: published, or used before a deletion (read fresh). */
  async lastVersion(id: string): Promise<number> {
    this.current.delete(id);
    const [manifest, record] = await Promise.all([this.find(id), this.ownerRecord(id)]);
    return Math.max(manifest?.version ?? 0, record?.lastVersion ?? 0);
  }

  /**
   * The bytes a tenant's current datasets take in storage (the quota's measure), leaving out
   * `except` (the one being replaced): each manifest's `storedBytes`, 0 for a linked Zarr, and for
   * a manifest written before bytes were recorded, its uncompressed pyramid (an upper bound).
   */
  async tenantStoredBytes(tenant: string, except?: string): Promise<number> {
    let total = 0;
    // Read fresh: another process may have published or replaced one of them a moment ago.
    for (const m of await this.list({ fresh: true })) {
      if ((m.tenant ?? 'public') !== tenant || m.id === except) continue;
      total += m.storedBytes ?? (m.source ? 0 : pyramidPixelBytes({ ...m, sizeC: m.channels.length }));
    }
    return total;
  }

  /** The version a new ingest of `id` should write, when nothing reserves versions elsewhere (tests, tools). */
  async nextVersion(id: string): Promise<number> {
    return (await this.lastVersion(id)) + 1;
  }

  /** Whose the id is (read fresh): the current manifest's tenant, else a deleted dataset's; undefined for an unused id. */
  async owner(id: string): Promise<string | undefined> {
    this.current.delete(id);
    const manifest = await this.find(id);
    if (manifest) return manifest.tenant ?? 'public';
    return (await this.ownerRecord(id))?.tenant;
  }

  private async ownerRecord(id: string): Promise<OwnerRecord | undefined> {
    const bytes = await this.store.get(ownerRecordKey(id));
    return bytes ? parseJson(bytes, OwnerRecord, `owner record of ${id}`) : undefined;
  }

  /**
   * Unpublishes a dataset: remembers its owner and last version, then removes the catalog pointer
   * (from then on it is not found). Its versions' objects stay for the caller to retire, since
   * tiles of them may still be in flight. Returns the removed manifest, or undefined if there was none.
   */
  async unpublish(id: string): Promise<DatasetManifest | undefined> {
    this.current.delete(id);
    const manifest = await this.find(id);
    if (!manifest) return undefined;
    const record: OwnerRecord = { v: 1, tenant: manifest.tenant ?? 'public', lastVersion: Math.max(manifest.version, (await this.ownerRecord(id))?.lastVersion ?? 0) };
    await this.store.put(ownerRecordKey(id), Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
    await this.store.delete(catalogKey(id));
    this.current.delete(id);
    return manifest;
  }

  /** Stores one source tile; returns the bytes stored (ingest bounds what a file may write). */
  async putSourceTile(id: string, version: number, position: SourceTilePosition, tile: SourceTile): Promise<number> {
    const bytes = encodeSourceTileAs(this.sourceEncoding, tile);
    await this.store.put(sourceTileKey(id, version, position), bytes);
    return bytes.length;
  }

  /**
   * Removal of a version's objects that is not the published one: a failed ingest's partial
   * source tiles, or a retired version's sources and (with `rendered`) its rendered tiles.
   * Refuses the published version, so a cleanup can never break a live dataset.
   */
  async deleteVersion(id: string, version: number, options: { rendered?: boolean } = {}): Promise<number> {
    this.current.delete(id);
    if ((await this.find(id))?.version === version) throw new Error(`version ${version} of "${id}" is published; not deleting it`);
    let deleted = 0;
    const prefixes = [versionPrefix(id, version), ...(options.rendered ? renderedVersionPrefixes(id, version) : [])];
    for (const prefix of prefixes) {
      // A delete may fail for a moment (S3 answers InternalError or SlowDown under a burst, past
      // its SDK's few retries; the test's S3 server does when deletes in one folder race): a pass
      // deletes what it lists, and the keys whose delete failed are listed and deleted again.
      for (let pass = 1; ; pass++) {
        let failure: unknown;
        let batch: string[] = [];
        const flush = async () => {
          for (const result of await Promise.allSettled(batch.map((key) => this.store.delete(key)))) {
            if (result.status === 'fulfilled') deleted++;
            else failure ??= result.reason;
          }
          batch = [];
        };
        for await (const key of this.store.list(prefix)) {
          batch.push(key);
          if (batch.length >= 64) await flush();
        }
        await flush();
        if (failure === undefined) break;
        if (pass >= DELETE_PASSES) throw failure;
      }
    }
    return deleted;
  }

  /** Statistics, then the version's manifest, then the pointer: the pointer's PUT is the commit. */
  async publish(manifest: DatasetManifest, stats: DatasetStats): Promise<void> {
    const body = Buffer.from(JSON.stringify(manifest));
    await this.store.put(statsKey(manifest.id, manifest.version), Buffer.from(JSON.stringify(stats)), { contentType: 'application/json' });
    await this.store.put(versionManifestKey(manifest.id, manifest.version), body, { contentType: 'application/json' });
    await this.store.put(catalogKey(manifest.id), body, { contentType: 'application/json' });
    this.remember(manifest.id, manifest);
  }
}
