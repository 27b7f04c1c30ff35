import express, { Router, type Response } from 'express';
import { CreateUploadBody, TilefarmError, UPLOAD_SOURCE_SCHEME, UploadId, describeZodError, type UploadRecord } from '@tilefarm/contracts';
import type { DatasetCatalog, UploadStore } from '@tilefarm/datasets';
import { maySeeJob, mayWrite, writerTenant } from '@tilefarm/tile-requests';
import { principalOf } from '../access';
import { newIngestJobId, queueIngest, unavailable, type IngestRouteDeps } from './ingests';

export interface UploadLimits {
  /** Largest file an upload may declare (UPLOAD_MAX_MB). */
  maxBytes: number;
  /** Size of every part but the last (UPLOAD_PART_MB; S3 wants at least 5 MiB). */
  partBytes: number;
}

export interface UploadRouteDeps {
  uploads: UploadStore;
  catalog: DatasetCatalog;
  ingest: Pick<IngestRouteDeps, 'tracker' | 'queue'>;
  limits: UploadLimits;
}

const NO_SUCH_UPLOAD = 'no such upload (finished and cancelled ones are removed)';

/**
 * Browser uploads: POST /v1/uploads declares a file (id, name, size) and gets its part size;
 * PUT /v1/uploads/:id/parts/:n sends part n (resumable: GET lists what arrived, a part sent again
 * replaces it); POST .../complete joins the parts and queues the ingest under the upload's id
 * (progress as for any ingest: GET /v1/ingests/:id); DELETE cancels and removes every part.
 * An upload is its tenant's only: another tenant's is answered like one that does not exist. The
 * dataset id is judged like POST /v1/datasets (its owner only) when the upload starts and again
 * when it completes.
 */
export function uploadRoutes(deps: UploadRouteDeps): Router {
  const router = Router();
  const { uploads, limits } = deps;

  const recordFor = async (raw: unknown, res: Response): Promise<UploadRecord> => {
    const id = UploadId.safeParse(raw);
    const record = id.success ? await uploads.find(id.data) : undefined;
    if (!record || !maySeeJob(principalOf(res), record.tenant)) throw new TilefarmError('not_found', NO_SUCH_UPLOAD);
    return record;
  };
  const stillOpen = (record: UploadRecord) => {
    if (record.completed) throw new TilefarmError('conflict', `upload ${record.uploadId} is complete; its ingest is /v1/ingests/${record.uploadId}`);
  };

  router.post('/v1/uploads', async (req, res) => {
    const body = CreateUploadBody.safeParse(req.body);
    if (!body.success) throw new TilefarmError('bad_request', describeZodError(body.error));
    const { id, filename, size, name, ignoreOmeXml } = body.data;
    if (size > limits.maxBytes) throw new TilefarmError('payload_too_large', `uploads are limited to ${Math.floor(limits.maxBytes / 2 ** 20)} MB on this server (UPLOAD_MAX_MB); this file is ${Math.ceil(size / 2 ** 20)} MB`);
    const principal = principalOf(res);
    if (!mayWrite(principal, await deps.catalog.owner(id))) throw unavailable(id);
    const record = await uploads.begin({
      uploadId: newIngestJobId(id),
      dataset: id,
      tenant: writerTenant(principal),
      filename,
      ...(name !== undefined ? { name } : {}),
      ...(ignoreOmeXml ? { ignoreOmeXml } : {}),
      size,
      partSize: limits.partBytes,
    });
    res.status(201).location(`/v1/uploads/${record.uploadId}`).json(await uploads.status(record));
  });

  router.get('/v1/uploads/:uploadId', async (req, res) => {
    const record = await recordFor(req.params.uploadId, res);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ...(await uploads.status(record)), completed: record.completed === true });
  });

  // The part's bytes as they come (any content type), at most one part's size.
  const partBody = express.raw({ type: () => true, limit: limits.partBytes });
  router.put('/v1/uploads/:uploadId/parts/:n', partBody, async (req, res) => {
    const record = await recordFor(req.params.uploadId, res);
    stillOpen(record);
    const n = /^[1-9][0-9]{0,4}$/.test(String(req.params.n)) ? Number(req.params.n) : NaN;
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const part = await uploads.putPart(record, n, body);
    // Cancelled while this part was on its way: its record must not outlive the upload.
    if (!(await uploads.find(record.uploadId))) {
      await uploads.discard(record.uploadId);
      throw new TilefarmError('not_found', NO_SUCH_UPLOAD);
    }
    res.json({ partNumber: part.partNumber, size: part.size });
  });

  router.post('/v1/uploads/:uploadId/complete', async (req, res) => {
    const record = await recordFor(req.params.uploadId, res);
    stillOpen(record);
    const principal = principalOf(res);
    if (!mayWrite(principal, await deps.catalog.owner(record.dataset))) throw unavailable(record.dataset);
    await uploads.complete(record);
    await uploads.markCompleted(record);
    try {
      const name = record.name ?? record.filename.replace(/\.(?:ome\.)?tiff?$/i, '');
      const answer = await queueIngest(deps.ingest, record.uploadId, { id: record.dataset, source: `${UPLOAD_SOURCE_SCHEME}${record.uploadId}`, tenant: record.tenant, name, ...(record.ignoreOmeXml ? { ignoreOmeXml: true } : {}) });
      res.status(202).location(answer.statusUrl).json(answer);
    } catch (e) {
      // Not queued (the id is busy, Redis is down): nothing of the upload stays behind.
      await uploads.discard(record.uploadId).catch(() => undefined);
      throw e;
    }
  });

  router.delete('/v1/uploads/:uploadId', async (req, res) => {
    const record = await recordFor(req.params.uploadId, res);
    stillOpen(record);
    await uploads.discard(record.uploadId);
    res.status(204).end();
  });

  return router;
}
