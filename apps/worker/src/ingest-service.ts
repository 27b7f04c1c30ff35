import { basename } from 'node:path';
import { z } from 'zod';
import {
  PlaneStats,
  TilefarmError,
  type IngestFinishJob,
  type IngestPlaneJob,
  type IngestStartJob,
} from '@tilefarm/contracts';
import { WrittenBytes, type DatasetCatalog, type QuotaReservations } from '@tilefarm/datasets';
import { discardIngest, finishIngest, ingestPlane, planIngest, type IngestPlan, type IngestSourceFiles } from '@tilefarm/ingest';
import type { BullIngestQueue, IngestJobName, IngestJobPayload, IngestTracker, RetiredVersions } from '@tilefarm/queue';
import type { IngestMetrics, Logger } from '@tilefarm/telemetry';

export interface IngestServiceDeps {
  catalog: DatasetCatalog;
  tracker: IngestTracker;
  queue: Pick<BullIngestQueue, 'addUnits'>;
  sources: IngestSourceFiles;
  metrics: IngestMetrics;
  logger: Logger;
  maxSourcePixels?: number;
  maxWriteRatio?: number;
  /** Registers an OME-Zarr where it lies (mode "link"); absent: linking is refused. */
  linkZarr?: (job: IngestStartJob, onProgress: (done: number, total: number) => Promise<void>) => Promise<{ version: number }>;
  /** Per-tenant storage quota in bytes written to storage; undefined: none. */
  tenantQuotaBytes?: number;
  /** The quota's publish step, shared by every worker and the CLI (Redis). */
  quotaReservations?: QuotaReservations;
  /** The version a publish replaces is deleted after `graceMs` (tiles of it may be in flight). */
  retired: Pick<RetiredVersions, 'retire'>;
  graceMs: number;
  /** How often a running unit reports its tile count (and learns whether the ingest failed elsewhere). */
  progressIntervalMs?: number;
}

/** What a unit job returns to the finish step: its planes' statistics and the bytes it stored. */
const UnitResult = z.object({ planes: z.array(PlaneStats), storedBytes: z.number().int().min(0) });
type UnitResult = z.infer<typeof UnitResult>;

/**
 * The worker's part of a queued ingest (POST /v1/datasets): `start` plans and fans out one job per
 * unit, `unit` writes one unit's tiles, `finish` publishes once all units are done; `giveUp` fails
 * the ingest and removes what was written. Progress and outcome go through `IngestTracker`.
 */
export class IngestService {
  constructor(private readonly deps: IngestServiceDeps) {}

  start = async (job: IngestStartJob): Promise<void> => {
    const { tracker, sources, catalog, queue, logger } = this.deps;
    const status = await tracker.get(job.jobId);
    // Unknown (expired), over, or a retried start whose flow is already queued: nothing to do.
    if (!status || (status.state !== 'queued' && status.state !== 'planning')) return;
    await tracker.setState(job.jobId, 'planning');
    if (job.mode !== undefined) return this.link(job); // an OME-Zarr, linked or copied
    const local = await sources.acquire(job.jobId, job.source);
    try {
      const plan = await planIngest({ path: local.path, id: job.dataset, name: job.name, tenant: job.tenant, catalog, maxSourcePixels: this.deps.maxSourcePixels, maxWriteRatio: this.deps.maxWriteRatio, ignoreOmeXml: job.ignoreOmeXml, versions: tracker, tenantQuotaBytes: this.deps.tenantQuotaBytes });
      // A downloaded file has a temp name; the dataset is named after the object instead.
      if (!job.name && plan.name === basename(local.path)) plan.name = local.displayName;
      const units = plan.layout.units.length;
      await tracker.planned(job.jobId, job.dataset, JSON.stringify(plan), { total: plan.totalTiles, units, version: plan.version, warnings: plan.warnings });
      await queue.addUnits({ v: 1, jobId: job.jobId, dataset: job.dataset, source: job.source }, units);
      await tracker.setState(job.jobId, 'running');
      logger.info({ jobId: job.jobId, dataset: job.dataset, version: plan.version, units, tiles: plan.totalTiles }, 'ingest planned');
    } finally {
      local.release();
    }
  };

  unit = async (job: IngestPlaneJob): Promise<UnitResult | null> => {
    const { tracker, sources, catalog, metrics } = this.deps;
    const before = await tracker.unitProgress(job.jobId, job.dataset, job.unit, 0);
    if (before.state === 'gone' || before.state === 'failed' || before.state === 'completed') return null;
    const plan = await this.plan(job.jobId);
    const local = await sources.acquire(job.jobId, job.source);
    const started = performance.now();
    const abort = new AbortController();
    let written = 0;
    let reported = 0;
    // Reports are chained so they reach Redis in order; a report that finds the ingest failed stops the unit.
    let reports: Promise<unknown> = Promise.resolve();
    const report = (finished: boolean) => {
      const count = written;
      reports = reports.then(async () => {
        const p = await tracker.unitProgress(job.jobId, job.dataset, job.unit, count, finished);
        metrics.tiles.inc(Math.max(0, count - reported));
        reported = Math.max(reported, count);
        if (p.state === 'failed' || p.state === 'gone') abort.abort();
        return p;
      });
      return reports as Promise<{ state: string }>;
    };
    const timer = setInterval(() => {
      if (written > reported) void report(false).catch(() => undefined);
    }, this.deps.progressIntervalMs ?? 250);
    // Units may run at once on several workers: each alone stays within what the quota left,
    // and the finish step checks their sum before publishing.
    const stored = new WrittenBytes(plan.quota);
    try {
      const stats = await ingestPlane({ ...plan, path: local.path }, job.unit, {
        catalog,
        written: stored,
        signal: abort.signal,
        onProgress: (p) => {
          written = p.done;
        },
      });
      clearInterval(timer);
      const after = await report(true);
      if (after.state === 'failed' || after.state === 'gone') {
        // Another unit failed while this one ran: its tiles go with the rest.
        await discardIngest(plan, catalog);
        return null;
      }
      metrics.units.inc();
      metrics.unitSeconds.observe((performance.now() - started) / 1000);
      return { planes: stats, storedBytes: stored.total };
    } catch (e) {
      if (abort.signal.aborted) {
        await discardIngest(plan, catalog);
        return null;
      }
      throw e;
    } finally {
      clearInterval(timer);
      await reports.catch(() => undefined);
      local.release();
    }
  };

  finish = async (job: IngestFinishJob, unitResults: unknown[]): Promise<void> => {
    const { tracker, catalog, metrics, logger, sources } = this.deps;
    const state = await tracker.setState(job.jobId, 'publishing');
    if (state !== 'publishing') return;
    const plan = await this.plan(job.jobId);
    const planes: PlaneStats[] = [];
    let storedBytes = 0;
    for (const r of unitResults) {
      const parsed = UnitResult.safeParse(r);
      if (!parsed.success) throw new TilefarmError('internal', `a unit of ${job.jobId} returned no statistics`);
      planes.push(...parsed.data.planes);
      storedBytes += parsed.data.storedBytes;
    }
    const replaced = await catalog.find(job.dataset);
    const manifest = await finishIngest(plan, planes, catalog, storedBytes, this.deps.quotaReservations);
    if (replaced && replaced.version !== manifest.version) await this.deps.retired.retire(job.dataset, replaced.version, Date.now() + this.deps.graceMs);
    if (await tracker.complete(job.jobId, job.dataset, manifest.version)) metrics.published.inc();
    await sources.forget(job.jobId);
    logger.info({ jobId: job.jobId, dataset: job.dataset, version: manifest.version }, 'ingest published');
  };

  /** The ingest has failed for good: record why (first failure wins), then remove its partial tiles. */
  giveUp = async (name: IngestJobName, job: IngestJobPayload | undefined, error: TilefarmError): Promise<void> => {
    const { tracker, catalog, metrics, logger, sources } = this.deps;
    logger.warn({ step: name, jobId: job?.jobId, dataset: job?.dataset, code: error.code, err: error.message }, 'ingest failed');
    if (!job) return;
    if (await tracker.fail(job.jobId, job.dataset, error.code, error.message)) metrics.failures.inc({ code: error.code });
    const plan = await tracker.plan(job.jobId);
    if (plan && !(JSON.parse(plan) as { linked?: boolean }).linked) await discardIngest(JSON.parse(plan) as IngestPlan, catalog);
    await sources.forget(job.jobId);
  };

  /**
   * A linked OME-Zarr: one unit (its statistics, plane by plane) done in the start step, with
   * progress in planes through the same tracker, so watchers see it like an ingest.
   */
  private async link(job: IngestStartJob): Promise<void> {
    const { tracker, logger, metrics } = this.deps;
    if (!this.deps.linkZarr) throw new TilefarmError('bad_request', 'this worker cannot link OME-Zarr sources');
    let last = 0;
    let planned = false;
    const replaced = await this.deps.catalog.find(job.dataset);
    const manifest = await this.deps.linkZarr(job, async (done, total) => {
      if (!planned) {
        // No tiles to discard on failure: the plan names an empty version.
        await tracker.planned(job.jobId, job.dataset, JSON.stringify({ v: 1, id: job.dataset, version: 0, linked: true }), { total, units: 1, version: 0 });
        await tracker.setState(job.jobId, 'running');
        planned = true;
      }
      if (done === total || performance.now() - last > 250) {
        last = performance.now();
        const p = await tracker.unitProgress(job.jobId, job.dataset, 0, done, done === total);
        if (p.state === 'failed' || p.state === 'gone') throw new TilefarmError('conflict', `ingest ${job.jobId} was stopped`);
      }
    });
    // The version it replaces goes after the grace period, as for file ingests.
    if (replaced && replaced.version !== manifest.version) await this.deps.retired.retire(job.dataset, replaced.version, Date.now() + this.deps.graceMs);
    if (await tracker.complete(job.jobId, job.dataset, manifest.version)) metrics.published.inc();
    logger.info({ jobId: job.jobId, dataset: job.dataset, version: manifest.version, source: job.source }, 'OME-Zarr linked');
  }

  private async plan(jobId: string): Promise<IngestPlan> {
    const text = await this.deps.tracker.plan(jobId);
    if (!text) throw new TilefarmError('not_found', `the plan of ingest ${jobId} is gone (expired?)`);
    const plan = JSON.parse(text) as IngestPlan;
    if (plan.v !== 1) throw new TilefarmError('internal', `ingest ${jobId}: plan version ${String(plan.v)} is not understood`);
    return plan;
  }
}
