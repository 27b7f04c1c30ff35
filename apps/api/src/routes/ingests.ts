import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { CreateIngestBody, DatasetId, IngestJobId, TilefarmError, describeZodError, type IngestAccepted } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { parseIngestSource, type IngestSourceRules } from '@tilefarm/ingest';
import { maySeeJob, mayWrite, writerTenant } from '@tilefarm/tile-requests';
import { principalOf } from '../access';
import type { BullIngestQueue, IngestTracker, RetiredVersions } from '@tilefarm/queue';

export interface IngestRouteDeps {
  tracker: IngestTracker;
  queue: Pick<BullIngestQueue, 'start'>;
  catalog: DatasetCatalog;
  /** Where a deleted dataset's versions wait out `graceMs` before their objects go. */
  retired: RetiredVersions;
  graceMs: number;
  /** Where sources may come from (INGEST_ROOT, INGEST_S3_SOURCES). */
  sourceRules: IngestSourceRules;
}

/** One answer for "someone else's id" and "busy", naming neither the owner nor the other job. */
export function unavailable(id: string): TilefarmError {
  return new TilefarmError('conflict', `dataset id "${id}" is not available: it belongs to another owner, or an ingest or deletion of it is running; try again later or choose another id`);
}

export function newIngestJobId(dataset: string): string {
  return `ing-${dataset}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Takes the id's lock (one write of an id at a time) and queues the ingest; ownership was checked
 * by the caller. The upload route queues its finished uploads here too.
 */
export async function queueIngest(
  deps: Pick<IngestRouteDeps, 'tracker' | 'queue'>,
  jobId: string,
  job: { id: string; source: string; tenant: string; name?: string; ignoreOmeXml?: boolean; mode?: 'link' | 'copy' },
): Promise<IngestAccepted> {
  const { id, source, tenant, name, ignoreOmeXml, mode } = job;
  const begun = await deps.tracker.begin(jobId, id, tenant);
  if (!begun.ok) throw unavailable(id);
  try {
    await deps.queue.start({ v: 1, jobId, dataset: id, source, tenant, ...(name !== undefined ? { name } : {}), ...(ignoreOmeXml ? { ignoreOmeXml } : {}), ...(mode ? { mode } : {}) });
  } catch (e) {
    await deps.tracker.fail(jobId, id, 'unavailable', 'the ingest could not be queued').catch(() => undefined);
    throw e;
  }
  return { jobId, dataset: id, statusUrl: `/v1/ingests/${jobId}` };
}

/**
 * POST /v1/datasets queues an ingest (202 with the job id; progress over the socket with
 * `ingest:watch`, or GET /v1/ingests/:jobId). The file is not opened here: a missing or bad file
 * fails the job, which is what watchers are told. Input is judged before ownership, so bad input
 * answers the same whoever owns the id. An id belongs to its first owner for good (public ones to
 * the operator token); the worker checks again under the id's lock, which settles races.
 * DELETE /v1/datasets/:id unpublishes a dataset for its owner; its objects go after the grace period.
 */
export function ingestRoutes(deps: IngestRouteDeps): Router {
  const router = Router();
  router.post('/v1/datasets', async (req, res) => {
    const body = CreateIngestBody.safeParse(req.body);
    if (!body.success) throw new TilefarmError('bad_request', describeZodError(body.error));
    const { id, source, name, ignoreOmeXml } = body.data;
    parseIngestSource(source, deps.sourceRules); // 400 for a path outside the root, an s3:// object outside the allowed buckets
    const isZarr = /\.zarr\/*$/i.test(source);
    const mode = body.data.mode ?? (isZarr ? 'link' : 'copy');
    if (mode === 'link' && !isZarr) throw new TilefarmError('bad_request', 'mode "link" is for OME-Zarr sources (a path or s3:// prefix ending in .zarr)');
    const principal = principalOf(res);
    if (!mayWrite(principal, await deps.catalog.owner(id))) throw unavailable(id);
    const answer = await queueIngest(deps, newIngestJobId(id), { id, source, tenant: writerTenant(principal), ...(name !== undefined ? { name } : {}), ...(ignoreOmeXml ? { ignoreOmeXml } : {}), ...(isZarr ? { mode } : {}) });
    res.status(202).location(answer.statusUrl).json(answer);
  });

  router.delete('/v1/datasets/:id', async (req, res) => {
    const id = DatasetId.safeParse(req.params.id);
    if (!id.success) throw new TilefarmError('dataset_not_found', `no dataset "${String(req.params.id).slice(0, 64)}"`);
    const principal = principalOf(res);
    // Fresh: a dataset published a moment ago may still be cached as missing. 404 when missing
    // (another tenant's was answered 404, in the same words, before this).
    const manifest = await deps.catalog.findFresh(id.data);
    if (!manifest) throw new TilefarmError('dataset_not_found', `no dataset "${id.data}"`);
    if (!mayWrite(principal, manifest.tenant ?? 'public')) throw new TilefarmError('forbidden', 'public datasets are deleted with the operator token');
    // The id's lock, like an ingest: a deletion never interleaves with a write of the same id.
    const jobId = `del-${id.data}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    if (!(await deps.tracker.begin(jobId, id.data, writerTenant(principal))).ok) throw unavailable(id.data);
    try {
      const removed = await deps.catalog.unpublish(id.data);
      if (removed) await deps.retired.retire(id.data, removed.version, Date.now() + deps.graceMs);
      await deps.tracker.complete(jobId, id.data, removed?.version ?? 0);
    } catch (e) {
      await deps.tracker.fail(jobId, id.data, 'internal', 'deletion failed').catch(() => undefined);
      throw e;
    }
    res.status(204).end();
  });

  router.get('/v1/ingests/:jobId', async (req, res) => {
    const jobId = IngestJobId.safeParse(req.params.jobId);
    const status = jobId.success ? await deps.tracker.get(jobId.data) : undefined;
    // Another tenant's job is answered exactly like one that does not exist.
    if (!status || !maySeeJob(principalOf(res), status.tenant)) throw new TilefarmError('not_found', 'no such ingest job (finished ones are kept for a day)');
    const { tenant: _tenant, ...body } = status;
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  });
  return router;
}
