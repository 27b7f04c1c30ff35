import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { CreateIngestBody, IngestJobId, TilefarmError, describeZodError, type IngestAccepted } from '@tilefarm/contracts';
import { parseIngestSource, type IngestSourceRules } from '@tilefarm/ingest';
import { principalOf } from '../access';
import type { BullIngestQueue, IngestTracker } from '@tilefarm/queue';

export interface IngestRouteDeps {
  tracker: IngestTracker;
  queue: Pick<BullIngestQueue, 'start'>;
  /** Where sources may come from (INGEST_ROOT, INGEST_S3_SOURCES). */
  sourceRules: IngestSourceRules;
}

/**
 * POST /v1/datasets queues an ingest (202 with the job id; progress over the socket with
 * `ingest:watch`, or GET /v1/ingests/:jobId). The file is not opened here: a missing or bad file
 * fails the job, which is what watchers are told.
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
    const jobId = `ing-${id}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const begun = await deps.tracker.begin(jobId, id);
    if (!begun.ok) throw new TilefarmError('conflict', `dataset "${id}" is being ingested already (job ${begun.holder}); wait for it to finish`);
    try {
      const principal = principalOf(res);
      const tenant = principal.kind === 'tenant' ? principal.tenant : 'public';
      await deps.queue.start({ v: 1, jobId, dataset: id, source, tenant, ...(name !== undefined ? { name } : {}), ...(ignoreOmeXml ? { ignoreOmeXml } : {}), ...(isZarr ? { mode } : {}) });
    } catch (e) {
      await deps.tracker.fail(jobId, id, 'unavailable', 'the ingest could not be queued').catch(() => undefined);
      throw e;
    }
    const answer: IngestAccepted = { jobId, dataset: id, statusUrl: `/v1/ingests/${jobId}` };
    res.status(202).location(answer.statusUrl).json(answer);
  });
  router.get('/v1/ingests/:jobId', async (req, res) => {
    const jobId = IngestJobId.safeParse(req.params.jobId);
    const status = jobId.success ? await deps.tracker.get(jobId.data) : undefined;
    if (!status) throw new TilefarmError('not_found', 'no such ingest job (finished ones are kept for a day)');
    res.setHeader('Cache-Control', 'no-store');
    res.json(status);
  });
  return router;
}
