import { TilefarmError, UploadPartRecord, UploadRecord, type UploadStatusBody } from '@tilefarm/contracts';
import { multipartOf, type MultipartWriter, type ObjectStore } from '@tilefarm/storage';

/** Everything of one upload lives under this prefix: its record, its part records, its parts and the assembled file. */
export function uploadPrefix(uploadId: string): string {
  return `uploads/${uploadId}/`;
}
const recordKey = (uploadId: string) => `${uploadPrefix(uploadId)}upload.json`;
const partKey = (uploadId: string, n: number) => `${uploadPrefix(uploadId)}parts/${String(n).padStart(5, '0')}.json`;
/** The assembled file (a fixed name: the user's file name is kept in the record, never in a key). */
export function uploadSourceKey(record: Pick<UploadRecord, 'uploadId' | 'filename'>): string {
  return `${uploadPrefix(record.uploadId)}source${/\.ome\.tiff?$/i.test(record.filename) ? '.ome.tif' : '.tif'}`;
}

export function partsOf(record: Pick<UploadRecord, 'size' | 'partSize'>): number {
  return Math.ceil(record.size / record.partSize);
}

/**
 * Browser uploads in the object store: parts go straight to the store's multipart write (S3
 * multipart on S3, part files on local disk), one small record per part so a resumed upload knows
 * what arrived (s3rver, like some S3-protocol servers, cannot list parts). `discard` leaves nothing
 * of an upload behind: the multipart write aborted and every object under its prefix deleted.
 */
export class UploadStore {
  private readonly multipart: MultipartWriter;

  constructor(private readonly store: ObjectStore) {
    this.multipart = multipartOf(store);
  }

  async begin(fields: Omit<UploadRecord, 'v' | 'token' | 'createdAt'>): Promise<UploadRecord> {
    const base = { v: 1 as const, ...fields, createdAt: new Date().toISOString() };
    const token = await this.multipart.beginMultipart(uploadSourceKey(base));
    const record: UploadRecord = { ...base, token };
    await this.store.put(recordKey(record.uploadId), Buffer.from(JSON.stringify(record)), { contentType: 'application/json' });
    return record;
  }

  async find(uploadId: string): Promise<UploadRecord | undefined> {
    const body = await this.store.get(recordKey(uploadId));
    if (!body) return undefined;
    const parsed = UploadRecord.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  }

  /** Stores part `n`, checked against the declared size: every part is `partSize` bytes but the last. */
  async putPart(record: UploadRecord, n: number, body: Buffer): Promise<UploadPartRecord> {
    const parts = partsOf(record);
    if (!Number.isInteger(n) || n < 1 || n > parts) throw new TilefarmError('bad_request', `part number must be 1..${parts}`);
    const expected = n < parts ? record.partSize : record.size - record.partSize * (parts - 1);
    if (body.length !== expected) throw new TilefarmError(body.length > expected ? 'payload_too_large' : 'bad_request', `part ${n} must be ${expected} bytes (got ${body.length})`);
    const etag = await this.multipart.putPart(uploadSourceKey(record), record.token, n, body);
    const part: UploadPartRecord = { partNumber: n, etag, size: body.length };
    await this.store.put(partKey(record.uploadId, n), Buffer.from(JSON.stringify(part)), { contentType: 'application/json' });
    return part;
  }

  async received(uploadId: string): Promise<UploadPartRecord[]> {
    const out: UploadPartRecord[] = [];
    for await (const key of this.store.list(`${uploadPrefix(uploadId)}parts/`)) {
      const body = await this.store.get(key);
      const parsed = body ? UploadPartRecord.safeParse(JSON.parse(body.toString('utf8'))) : undefined;
      if (parsed?.success) out.push(parsed.data);
    }
    return out.sort((a, b) => a.partNumber - b.partNumber);
  }

  async status(record: UploadRecord): Promise<UploadStatusBody> {
    const received = (await this.received(record.uploadId)).map((p) => p.partNumber);
    return { uploadId: record.uploadId, dataset: record.dataset, filename: record.filename, size: record.size, partSize: record.partSize, parts: partsOf(record), received };
  }

  /** Joins the parts into the source file; every part must have arrived. */
  async complete(record: UploadRecord): Promise<void> {
    const parts = await this.received(record.uploadId);
    const missing = partsOf(record) - parts.length;
    if (missing > 0) throw new TilefarmError('bad_request', `${missing} of ${partsOf(record)} parts have not arrived yet (GET the upload to see which)`);
    await this.multipart.completeMultipart(uploadSourceKey(record), record.token, parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })));
  }

  async markCompleted(record: UploadRecord): Promise<UploadRecord> {
    const done: UploadRecord = { ...record, completed: true };
    await this.store.put(recordKey(record.uploadId), Buffer.from(JSON.stringify(done)), { contentType: 'application/json' });
    return done;
  }

  /** The assembled file as a local file for the ingest (streamed). */
  async downloadTo(uploadId: string, path: string): Promise<number | undefined> {
    const record = await this.find(uploadId);
    return record ? this.multipart.downloadTo(uploadSourceKey(record), path) : undefined;
  }

  /** Removes everything of an upload (cancelled, failed, expired, or ingested). Idempotent. */
  async discard(uploadId: string): Promise<boolean> {
    const record = await this.find(uploadId);
    if (record) await this.multipart.abortMultipart(uploadSourceKey(record), record.token);
    const keys: string[] = [];
    for await (const key of this.store.list(uploadPrefix(uploadId))) keys.push(key);
    // The record last: if this is interrupted, the next discard still finds the multipart token.
    for (const key of keys.filter((k) => k !== recordKey(uploadId))) await this.store.delete(key);
    if (record) await this.store.delete(recordKey(uploadId));
    return record !== undefined || keys.length > 0;
  }

  /**
   * Uploads started before `before` (ms since epoch), for the expiry sweep: never completed (a
   * closed tab), or completed but left behind by an ingest that could not remove it when it ended.
   */
  async *abandonedBefore(before: number): AsyncIterable<string> {
    const seen = new Set<string>();
    for await (const key of this.store.list('uploads/')) {
      const id = key.split('/')[1];
      if (!id || seen.has(id)) continue;
      seen.add(id);
      const record = await this.find(id);
      if (!record || Date.parse(record.createdAt) < before) yield id;
    }
  }
}
