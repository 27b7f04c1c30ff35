import { basename } from 'node:path';
import {
  DatasetId,
  DatasetManifest,
  TilefarmError,
  levelGrid,
  type ChannelInfo,
  type DatasetStats,
  type PlaneStats,
} from '@tilefarm/contracts';
import { PlaneStatsAccumulator, WrittenBytes, levelCountFor, publishWithinQuota, startIngestQuota, type DatasetCatalog, type IngestQuota, type QuotaReservations } from '@tilefarm/datasets';
import { IngestError } from './errors';
import { BoundedWrites, LevelBuilder } from './pyramid-builder';
import { readSourceLayout, type SourceLayout } from './source-layout';
import { openUnit } from './unit-reader';

/**
 * Default limit on width × height × z × t × channels: 2^37 samples (275 GB of uint16), e.g. a
 * 131072² whole slide with 8 channels, or 50,000² with 55. Deployments with bigger sources raise it.
 */
export const DEFAULT_MAX_SOURCE_PIXELS = 2 ** 37;
/**
 * Default bound on the bytes one unit may write, as a multiple of the file bytes it decodes.
 * Source tiles are stored uncompressed by default (×4/3 for the pyramid), so this admits files
 * compressed up to about 190:1; deflate itself cannot exceed about 1032:1 per byte read.
 */
export const DEFAULT_MAX_WRITE_RATIO = 256;
/** Every unit may write at least this much, so tiny, very compressible files still ingest. */
export const MIN_WRITE_ALLOWANCE_BYTES = 4 * 1024 * 1024;
/** Tile writes in flight per unit: enough to hide store latency, few enough to bound memory. */
const WRITES_IN_FLIGHT = 16;

export interface IngestProgress {
  /** Source tiles written so far, of `total`. */
  done: number;
  total: number;
  phase: 'plan' | 'tiles' | 'publish' | 'done';
}

export interface PlanIngestOptions {
  path: string;
  id: string;
  name?: string;
  tenant?: string;
  catalog: DatasetCatalog;
  tileSize?: 256 | 512;
  maxSourcePixels?: number;
  /** Bytes a unit may write per byte of the file it decodes (decompression bombs); default DEFAULT_MAX_WRITE_RATIO. */
  maxWriteRatio?: number;
  /** Read an OME-TIFF as a plain TIFF, for OME-XML that does not describe its file; adds a warning to the plan. */
  ignoreOmeXml?: boolean;
  /**
   * Where versions are reserved: the one counter every writer of the id shares (Redis), so a CLI
   * ingest and a queued one never write one version. Default: one more than storage knows (only
   * safe with a single writer, e.g. tests).
   */
  versions?: VersionReservations;
  /** Per-tenant storage quota in bytes written to storage (public datasets are not counted); undefined: none. */
  tenantQuotaBytes?: number;
}

/** A writer's hold on a dataset id's lock (the one queued ingests take). */
export interface HeldDatasetLock {
  /** Keeps the lock while a long ingest runs. */
  heartbeat(): Promise<void>;
  /** Releases the lock, recording the outcome. */
  release(outcome: { version: number } | { code: string; message: string }): Promise<void>;
}

/**
 * What an ingest outside the queue (the CLI) shares with queued ones: the per-id lock, the
 * version counter, and retiring the version it replaces (RedisIngestCoordination in @tilefarm/queue).
 */
export interface IngestCoordination extends VersionReservations {
  /** Takes the id's lock for `tenant`; undefined while another writer holds it. */
  lock(id: string, tenant: string): Promise<HeldDatasetLock | undefined>;
  /** The version a publish replaced: deleted after the grace period. */
  retire(id: string, version: number): Promise<void>;
}

/** Reserves dataset versions for ingests (IngestTracker.reserveVersion in production). */
export interface VersionReservations {
  /** One more than the last version reserved and than `floor`. */
  reserveVersion(id: string, floor: number): Promise<number>;
}

/**
 * Everything a worker needs to ingest one unit, as plain JSON (it can travel in a job payload).
 * The version is reserved when planning; units are independent and may run in any order, on any
 * worker that can read `path`.
 */
export interface IngestPlan {
  v: 1;
  path: string;
  id: string;
  version: number;
  name: string;
  tenant: string;
  tileSize: 256 | 512;
  levels: number;
  layout: SourceLayout;
  /** Source tiles of each unit, and of the whole ingest. */
  tilesPerUnit: number[];
  totalTiles: number;
  /** Bytes each unit may write: max(MIN_WRITE_ALLOWANCE_BYTES, maxWriteRatio × its source bytes). */
  maxWrittenBytesPerUnit: number[];
  maxWriteRatio: number;
  /** For the user, not fatal (e.g. OME-XML ignored on request): the CLI prints them, the API's ingest status lists them. */
  warnings: string[];
  /** The tenant's storage quota as this ingest found it; absent: none applies. */
  quota?: IngestQuota;
}

export interface IngestPlaneOptions {
  catalog: DatasetCatalog;
  /** Counts the bytes this unit stores (and stops it past the plan's quota); one meter may span several units. */
  written?: WrittenBytes;
  signal?: AbortSignal;
  /** Progress of this unit only (done/total in tiles). */
  onProgress?(p: IngestProgress): void;
}

export interface IngestFileOptions extends PlanIngestOptions {
  onProgress?(p: IngestProgress): void;
  /** Called once per warning of the plan, before any tile is written. */
  onWarning?(message: string): void;
  signal?: AbortSignal;
  /** Lock, versions and retirement shared with queued ingests; without it, only safe as the only writer (tests). */
  coordination?: IngestCoordination;
  /** The tenant quota's reservations shared with every other publisher (Redis), so two ingests of a tenant cannot both pass on old usage. */
  quotaReservations?: QuotaReservations;
}

function tilesOf(plan: Pick<IngestPlan, 'levels' | 'tileSize'> & { layout: Pick<SourceLayout, 'width' | 'height'> }): number {
  let n = 0;
  for (let level = 0; level < plan.levels; level++) {
    const g = levelGrid({ width: plan.layout.width, height: plan.layout.height, tileSize: plan.tileSize }, level);
    n += g.cols * g.rows;
  }
  return n;
}

/** Reads the file's headers, checks them, reserves the next version of `id`, and lists the units of work. */
export async function planIngest(opts: PlanIngestOptions): Promise<IngestPlan> {
  const id = DatasetId.safeParse(opts.id);
  if (!id.success) throw new TilefarmError('bad_request', `dataset id "${opts.id}" ${id.error.issues[0]?.message ?? 'is invalid'}`);
  const tileSize = opts.tileSize ?? 256;
  if (tileSize !== 256 && tileSize !== 512) throw new TilefarmError('bad_request', `tile size must be 256 or 512, not ${String(tileSize)}`);
  const layout = await readSourceLayout(opts.path, { maxSourcePixels: opts.maxSourcePixels ?? DEFAULT_MAX_SOURCE_PIXELS, ignoreOmeXml: opts.ignoreOmeXml });
  // The file's own reduced levels are used as they are; further levels are computed until the top fits one tile.
  const levels = Math.max(levelCountFor(layout.width, layout.height, tileSize), layout.nativeLevels);
  if (levels > 30) throw new IngestError('too_large', `${layout.width}×${layout.height} needs ${levels} pyramid levels, more than 30`);
  const perChannel = tilesOf({ levels, tileSize, layout });
  const tilesPerUnit = layout.units.map((u) => u.channels.length * perChannel);
  const maxWriteRatio = opts.maxWriteRatio ?? DEFAULT_MAX_WRITE_RATIO;
  const maxWrittenBytesPerUnit = layout.units.map((u) => Math.max(MIN_WRITE_ALLOWANCE_BYTES, Math.ceil(maxWriteRatio * u.sourceBytes)));
  // An id belongs to its first owner for good. The callers hold the id's ingest lock, so this
  // check and the version below cannot race another writer of the id.
  const tenant = opts.tenant ?? 'public';
  const owner = await opts.catalog.owner(id.data);
  if (owner !== undefined && owner !== tenant) throw new TilefarmError('conflict', `dataset id "${id.data}" is not available: it belongs to another owner`);
  // The quota counts bytes written, known only while writing: refused here only when nothing is left.
  const quota = await startIngestQuota(opts.catalog, tenant, id.data, opts.tenantQuotaBytes);
  const floor = await opts.catalog.lastVersion(id.data);
  const version = opts.versions ? await opts.versions.reserveVersion(id.data, floor) : floor + 1;
  return {
    v: 1,
    path: opts.path,
    id: id.data,
    version,
    // Writers' placeholder names ("Image0") say less than the file name.
    name: (opts.name ?? (layout.name && !/^Image:?\d*$/.test(layout.name) ? layout.name : basename(opts.path))).slice(0, 256),
    tenant,
    tileSize,
    levels,
    layout,
    tilesPerUnit,
    totalTiles: tilesPerUnit.reduce((a, b) => a + b, 0),
    maxWrittenBytesPerUnit,
    maxWriteRatio,
    warnings: layout.warnings,
    ...(quota ? { quota } : {}),
  };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new IngestError('aborted', 'ingest aborted');
}

/**
 * Writes every source tile of one unit (all levels, all of its channels) and returns the
 * full-resolution statistics of its channel planes. Idempotent: a retry rewrites the same keys.
 * Memory: per channel, one band of tileSize rows read from the file plus the level cascade
 * (< 2 × tileSize rows of full width), plus one decoded strip or tile row of the file.
 */
export async function ingestPlane(plan: IngestPlan, unitIndex: number, opts: IngestPlaneOptions): Promise<PlaneStats[]> {
  const unit = plan.layout.units[unitIndex];
  if (!unit) throw new RangeError(`unit ${unitIndex} of ${plan.layout.units.length}`);
  const { layout, tileSize, catalog } = { layout: plan.layout, tileSize: plan.tileSize, catalog: opts.catalog };
  const total = plan.tilesPerUnit[unitIndex] ?? 0;
  const maxWritten = plan.maxWrittenBytesPerUnit?.[unitIndex] ?? Math.max(MIN_WRITE_ALLOWANCE_BYTES, DEFAULT_MAX_WRITE_RATIO * unit.sourceBytes);
  let done = 0;
  let written = 0;
  const meter = opts.written ?? new WrittenBytes(plan.quota);
  const writes = new BoundedWrites(WRITES_IN_FLIGHT);
  const stats = unit.channels.map(() => new PlaneStatsAccumulator(layout.dtype));
  const reader = await openUnit(plan.path, layout, unit);
  try {
    for (let level = 0; level < layout.nativeLevels; level++) {
      checkAborted(opts.signal);
      const source = await reader.level(level);
      // The last level read from the file also feeds the computed levels below it.
      const computeBelow = level === layout.nativeLevels - 1 ? plan.levels - layout.nativeLevels : 0;
      const builders = unit.channels.map(
        (c) =>
          new LevelBuilder(level, source.width, source.height, tileSize, layout.dtype, (lvl, x, y, tile) =>
            writes.add(async () => {
              // Counted before the write: a bomb stops at its bound, not after it.
              written += tile.data.byteLength;
              if (written > maxWritten) {
                throw new IngestError('too_large', `${unit.where}: ingest would write more than ${maxWritten} bytes from the ${unit.sourceBytes} bytes of the file it decodes (over ${plan.maxWriteRatio}× the input, maxWriteRatio): refused as a decompression bomb`);
              }
              const stored = await catalog.putSourceTile(plan.id, plan.version, { level: lvl, t: unit.t, z: unit.z, c, x, y }, tile);
              written += stored - tile.data.byteLength;
              meter.add(stored);
              done++;
              opts.onProgress?.({ done, total, phase: 'tiles' });
            }),
          computeBelow),
      );
      for (let y0 = 0; y0 < source.height; y0 += tileSize) {
        checkAborted(opts.signal);
        const y1 = Math.min(source.height, y0 + tileSize);
        const rows = await source.readRows(y0, y1);
        for (let k = 0; k < builders.length; k++) {
          if (level === 0) stats[k]!.add(rows[k]!);
          await builders[k]!.push(rows[k]!, y1 - y0);
        }
      }
      for (const b of builders) b.assertComplete();
    }
    await writes.drain();
  } finally {
    await writes.drain().catch(() => undefined);
    await reader.close();
  }
  return unit.channels.map((c, k) => stats[k]!.finish(c, unit.z, unit.t));
}

const NAMED_COLOURS: Array<[RegExp, string]> = [
  [/dapi|hoechst|405|blue/i, '#0080ff'],
  [/gfp|fitc|488|alexa ?488|green/i, '#00ff00'],
  [/mcherry|rfp|tritc|cy3|561|568|594|red/i, '#ff0000'],
  [/cy5|647|far.?red|633|640/i, '#ff00ff'],
];
const PALETTE = ['#00ff00', '#ff00ff', '#00ffff', '#ffff00', '#ff0000', '#0080ff', '#ff8000', '#ffffff'];

function defaultChannel(layout: SourceLayout, c: number): { label: string; color: string } {
  const given = layout.channels[c];
  const label = (given?.label?.trim() || (layout.rgb ? ['Red', 'Green', 'Blue'][c] : undefined) || `Channel ${c}`).slice(0, 128);
  if (given?.color && given.color !== '#000000') return { label, color: given.color };
  if (layout.rgb) return { label, color: ['#ff0000', '#00ff00', '#0000ff'][c] ?? '#ffffff' };
  if (layout.sizeC === 1) return { label, color: '#ffffff' };
  const named = NAMED_COLOURS.find(([re]) => re.test(label));
  return { label, color: named ? named[1] : PALETTE[c % PALETTE.length]! };
}

/**
 * Checks that every channel plane has statistics, derives default windows (0.1 %..99.9 % over all
 * planes of a channel), checks the tenant's quota with `storedBytes` (what every unit wrote, which
 * the manifest records) and publishes: stats, version manifest, then the catalog pointer (the commit).
 */
export async function finishIngest(plan: IngestPlan, planes: PlaneStats[], catalog: DatasetCatalog, storedBytes: number, quotaReservations?: QuotaReservations): Promise<DatasetManifest> {
  const { layout } = plan;
  const byKey = new Map(planes.map((p) => [`${p.c}/${p.z}/${p.t}`, p]));
  for (let t = 0; t < layout.sizeT; t++) {
    for (let z = 0; z < layout.sizeZ; z++) {
      for (let c = 0; c < layout.sizeC; c++) {
        if (!byKey.has(`${c}/${z}/${t}`)) throw new Error(`statistics missing for c=${c} z=${z} t=${t}: not every unit was ingested`);
      }
    }
  }
  const channels: ChannelInfo[] = Array.from({ length: layout.sizeC }, (_, c) => {
    const mine = planes.filter((p) => p.c === c);
    const lo = Math.min(...mine.map((p) => p.percentiles['0.001'] ?? p.min));
    let hi = Math.max(...mine.map((p) => p.percentiles['0.999'] ?? p.max));
    if (!(hi > lo)) hi = lo + (layout.dtype === 'float32' ? 1e-6 : 1);
    return { ...defaultChannel(layout, c), window: [lo, hi] };
  });
  const sorted = [...byKey.values()].sort((a, b) => a.t - b.t || a.z - b.z || a.c - b.c);
  const parsed = DatasetManifest.safeParse({
    v: 1,
    id: plan.id,
    version: plan.version,
    name: plan.name,
    tenant: plan.tenant,
    width: layout.width,
    height: layout.height,
    sizeZ: layout.sizeZ,
    sizeT: layout.sizeT,
    tileSize: plan.tileSize,
    levels: plan.levels,
    dtype: layout.dtype,
    channels,
    ...(layout.physicalSize ? { physicalSize: layout.physicalSize } : {}),
    sourceEncoding: catalog.sourceEncoding,
    storedBytes,
    createdAt: new Date().toISOString(),
  });
  if (!parsed.success) throw new IngestError('unsupported', `the file cannot be described as a dataset: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const stats: DatasetStats = { v: 1, dataset: plan.id, version: plan.version, planes: sorted };
  await publishWithinQuota(catalog, plan.id, plan.quota, storedBytes, () => catalog.publish(parsed.data, stats), quotaReservations);
  return parsed.data;
}

/** Best-effort removal of a failed ingest's partial tiles (never touches a published version). */
export async function discardIngest(plan: Pick<IngestPlan, 'id' | 'version'>, catalog: DatasetCatalog): Promise<void> {
  await catalog.deleteVersion(plan.id, plan.version).catch(() => undefined);
}

/**
 * Ingests a whole file: plan, every unit in turn, publish. On any failure nothing is published
 * (the catalog pointer is written only by the final publish) and the partial tiles are deleted.
 * With `coordination`, under the id's lock with a version from the shared counter, like a queued
 * ingest, so the two can never write one version; the version it replaces is retired.
 */
export async function ingestFile(opts: IngestFileOptions): Promise<DatasetManifest> {
  const { coordination } = opts;
  if (!coordination) return ingestFileUnlocked(opts);
  const held = await coordination.lock(opts.id, opts.tenant ?? 'public');
  if (!held) throw new TilefarmError('conflict', `dataset "${opts.id}" is being ingested or deleted by another writer; try again when it is done`);
  const heartbeat = setInterval(() => void held.heartbeat().catch(() => undefined), 20_000);
  try {
    const replaced = await opts.catalog.find(opts.id);
    const manifest = await ingestFileUnlocked({ ...opts, versions: coordination });
    if (replaced && replaced.version !== manifest.version) await coordination.retire(opts.id, replaced.version);
    clearInterval(heartbeat);
    await held.release({ version: manifest.version });
    return manifest;
  } catch (e) {
    clearInterval(heartbeat);
    const code = e instanceof TilefarmError ? e.code : 'internal';
    await held.release({ code, message: e instanceof Error ? e.message : String(e) }).catch(() => undefined);
    throw e;
  }
}

async function ingestFileUnlocked(opts: IngestFileOptions): Promise<DatasetManifest> {
  opts.onProgress?.({ done: 0, total: 0, phase: 'plan' });
  const plan = await planIngest(opts);
  for (const w of plan.warnings) opts.onWarning?.(w);
  try {
    const planes: PlaneStats[] = [];
    // One meter over every unit: the whole file's bytes count against the quota as they are written.
    const written = new WrittenBytes(plan.quota);
    let before = 0;
    for (let i = 0; i < plan.layout.units.length; i++) {
      const base = before;
      planes.push(
        ...(await ingestPlane(plan, i, {
          catalog: opts.catalog,
          written,
          signal: opts.signal,
          onProgress: opts.onProgress && ((p) => opts.onProgress!({ done: base + p.done, total: plan.totalTiles, phase: 'tiles' })),
        })),
      );
      before += plan.tilesPerUnit[i] ?? 0;
    }
    checkAborted(opts.signal);
    opts.onProgress?.({ done: plan.totalTiles, total: plan.totalTiles, phase: 'publish' });
    const manifest = await finishIngest(plan, planes, opts.catalog, written.total, opts.quotaReservations);
    opts.onProgress?.({ done: plan.totalTiles, total: plan.totalTiles, phase: 'done' });
    return manifest;
  } catch (e) {
    await discardIngest(plan, opts.catalog);
    throw e;
  }
}
