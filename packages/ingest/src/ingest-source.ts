import { randomBytes } from 'node:crypto';
import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { TilefarmError, UPLOAD_SOURCE_SCHEME, isUnavailableError } from '@tilefarm/contracts';
import { IngestError } from './errors';

/** Where a queued ingest reads from, checked: a file under the ingest root, or an S3 object. */
export type IngestSource = { kind: 'path'; source: string; path: string } | { kind: 's3'; source: string; bucket: string; key: string };

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

function inside(root: string, path: string): boolean {
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Where sources may come from: the same settings on the API and every worker. */
export interface IngestSourceRules {
  /** Server paths must lie in here; undefined refuses them. */
  ingestRoot: string | undefined;
  /** `bucket` or `bucket/prefix` entries (INGEST_S3_SOURCES); empty refuses every s3:// source. */
  s3Sources: readonly string[];
}

/** Whether `bucket`/`key` lies under one of the allowed `bucket[/prefix]` entries (a prefix ends at a "/"). */
function s3Allowed(allowed: readonly string[], bucket: string, key: string): boolean {
  return allowed.some((entry) => {
    const slash = entry.indexOf('/');
    if ((slash < 0 ? entry : entry.slice(0, slash)) !== bucket) return false;
    const prefix = slash < 0 ? '' : entry.slice(slash + 1).replace(/\/*$/, '/');
    return prefix === '/' || key.startsWith(prefix);
  });
}

/**
 * Parses the `source` of POST /v1/datasets. A path (relative to `ingestRoot`, or absolute) must
 * lie inside `ingestRoot` after resolving "." and ".."; with no root configured, server-side paths
 * are refused. This is the lexical check the API can make without touching the file; the worker
 * repeats it on the real path (`IngestSourceFiles`), so a symlink cannot lead outside either.
 * An s3:// object must lie under a configured bucket or bucket/prefix: the workers' credentials
 * may read more than tenants should name.
 */
export function parseIngestSource(source: string, rules: IngestSourceRules): IngestSource {
  const { ingestRoot } = rules;
  if (source.includes('\0')) throw new TilefarmError('bad_request', 'source contains a NUL character');
  if (source.startsWith('s3://')) {
    if (rules.s3Sources.length === 0) throw new TilefarmError('bad_request', 's3:// sources are not enabled on this server (INGEST_S3_SOURCES is not set)');
    const rest = source.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (!S3_BUCKET.test(bucket)) throw new TilefarmError('bad_request', `source "${source.slice(0, 200)}": "${bucket.slice(0, 70)}" is not an S3 bucket name`);
    if (key === '' || key.length > 1024) throw new TilefarmError('bad_request', `source "${source.slice(0, 200)}": give the object as s3://bucket/key`);
    // "." and ".." would be resolved by URL handling on the way and could leave an allowed prefix.
    if (key.split('/').some((s) => s === '' || s === '.' || s === '..') || !s3Allowed(rules.s3Sources, bucket, key)) {
      throw new TilefarmError('bad_request', `source "${source.slice(0, 200)}" is not under an allowed S3 bucket or prefix (INGEST_S3_SOURCES)`);
    }
    return { kind: 's3', source, bucket, key };
  }
  // Windows drive letters are not a concern here: the servers run on Linux.
  if (SCHEME.test(source)) throw new TilefarmError('bad_request', `source "${source.slice(0, 200)}": only server paths and s3://bucket/key URLs are supported`);
  if (!ingestRoot) throw new TilefarmError('bad_request', 'server-side paths are disabled on this server (INGEST_ROOT is not set); use an s3:// URL');
  const root = resolve(ingestRoot);
  const path = isAbsolute(source) ? resolve(source) : resolve(root, source);
  if (!inside(root, path)) throw new TilefarmError('bad_request', `source "${source.slice(0, 200)}" is outside the ingest root`);
  return { kind: 'path', source, path };
}

/**
 * A failed download in the error table's terms: the store unreachable is `unavailable` (retried);
 * anything else it answered (no access, no bucket, bad credentials) is `source_unreadable`, named
 * by the S3 error's name only: the SDK's text can hold account ids, ARNs and hosts.
 */
function downloadError(source: string, e: unknown): TilefarmError {
  if (e instanceof TilefarmError) return e;
  if (isUnavailableError(e)) return new TilefarmError('unavailable', `source "${source.slice(0, 200)}": S3 could not be reached`);
  const name = e instanceof Error && /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(e.name) ? e.name : 'Error';
  return new TilefarmError('source_unreadable', `source "${source.slice(0, 200)}" could not be read from S3 (${name})`);
}

/** Copies an S3 object to a local file; `undefined` when there is no such object (S3SourceFetcher). */
export interface ObjectDownloader {
  downloadTo(bucket: string, key: string, path: string, signal?: AbortSignal): Promise<number | undefined>;
}

/** Browser uploads in the object store (`upload:<uploadId>` sources; UploadStore in @tilefarm/datasets). */
export interface UploadedSources {
  downloadTo(uploadId: string, path: string): Promise<number | undefined>;
  /** Removes everything of the upload; called when its ingest has ended, published or failed. */
  discard(uploadId: string): Promise<unknown>;
}

export interface IngestSourceFilesOptions extends IngestSourceRules {
  /** Needed for s3:// sources. */
  downloader?: ObjectDownloader;
  /** Needed for uploads; the ingest of an upload has the upload's id as its job id. */
  uploads?: UploadedSources;
  /** Where downloaded sources are kept while their ingest runs. */
  tempDir: string;
  /** A download is deleted after no unit of its ingest ran in this process for this long. */
  idleMs?: number;
}

export interface LocalSource {
  /** A file the TIFF reader can open and seek in. */
  path: string;
  /** A name for the dataset when none was given (the file name, not a temp name). */
  displayName: string;
  release(): void;
}

interface Download {
  file: Promise<string>;
  users: number;
  idle?: NodeJS.Timeout;
}

/**
 * Gives a worker a local file for an ingest source. Server paths are used in place (the ingest
 * root must be the same shared mount on every worker). S3 objects are downloaded once per worker
 * process and ingest, shared by that process's concurrent units, and deleted when idle or on close.
 */
export class IngestSourceFiles {
  private readonly downloads = new Map<string, Download>();

  constructor(private readonly options: IngestSourceFilesOptions) {}

  async acquire(ingestId: string, source: string): Promise<LocalSource> {
    // Uploads are named only by the API's upload route (POST /v1/datasets refuses the scheme):
    // the ingest's own id is the upload's, so a job can only read the upload it was queued for.
    if (source === `${UPLOAD_SOURCE_SCHEME}${ingestId}`) return this.fetched(ingestId, source, 'upload', (path) => this.downloadUpload(ingestId, path));
    const parsed = parseIngestSource(source, this.options);
    if (parsed.kind === 'path') {
      return { path: await this.checkedPath(parsed), displayName: basename(parsed.path), release: () => undefined };
    }
    return this.fetched(ingestId, source, basename(parsed.key), (path) => this.downloadS3(parsed, path));
  }

  private async downloadS3(parsed: Extract<IngestSource, { kind: 's3' }>, path: string): Promise<number | undefined> {
    if (!this.options.downloader) throw new TilefarmError('bad_request', 's3:// sources are not configured on this worker');
    return this.options.downloader.downloadTo(parsed.bucket, parsed.key, path);
  }

  private async downloadUpload(uploadId: string, path: string): Promise<number | undefined> {
    if (!this.options.uploads) throw new TilefarmError('bad_request', 'uploads are not configured on this worker');
    return this.options.uploads.downloadTo(uploadId, path);
  }

  /** A downloaded source: fetched once per worker process and ingest, shared by its units. */
  private async fetched(ingestId: string, source: string, displayName: string, download: (path: string) => Promise<number | undefined>): Promise<LocalSource> {
    const entry = this.downloads.get(ingestId) ?? this.startDownload(ingestId, source, download);
    entry.users++;
    clearTimeout(entry.idle);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.users--;
      if (entry.users === 0) entry.idle = setTimeout(() => void this.drop(ingestId, entry), this.options.idleMs ?? 60_000).unref();
    };
    try {
      return { path: await entry.file, displayName, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** The ingest is over (published or failed): its download can go now, and the upload it read, if any. */
  async forget(ingestId: string): Promise<void> {
    const entry = this.downloads.get(ingestId);
    if (entry && entry.users === 0) await this.drop(ingestId, entry);
    await this.options.uploads?.discard(ingestId);
  }

  async close(): Promise<void> {
    await Promise.all([...this.downloads].map(([id, entry]) => this.drop(id, entry)));
  }

  private async checkedPath(parsed: Extract<IngestSource, { kind: 'path' }>): Promise<string> {
    let real: string;
    try {
      real = await realpath(parsed.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new IngestError('not_found', `source "${parsed.source.slice(0, 200)}" does not exist`);
      throw new IngestError('unsupported', `source "${parsed.source.slice(0, 200)}" cannot be opened: ${(e as Error).message}`);
    }
    const root = await realpath(resolve(this.options.ingestRoot ?? '/nonexistent')).catch(() => undefined);
    if (!root || !inside(root, real)) throw new TilefarmError('bad_request', `source "${parsed.source.slice(0, 200)}" leads outside the ingest root`);
    if (!(await stat(real)).isFile()) throw new IngestError('unsupported', `source "${parsed.source.slice(0, 200)}" is not a file`);
    return real;
  }

  private startDownload(ingestId: string, source: string, download: (path: string) => Promise<number | undefined>): Download {
    const { tempDir } = this.options;
    const entry: Download = { users: 0, file: Promise.resolve('') };
    entry.file = (async () => {
      await mkdir(tempDir, { recursive: true });
      const ext = extname(source).replace(/[^.A-Za-z0-9]/g, '').slice(0, 10);
      const path = join(tempDir, `${ingestId}-${randomBytes(4).toString('hex')}${ext}`);
      const size = await download(path).catch((e: unknown) => {
        throw downloadError(source, e);
      });
      if (size === undefined) throw new IngestError('not_found', `source "${source.slice(0, 200)}" does not exist`);
      return path;
    })();
    // A failed download is not kept: the retry of the unit downloads again.
    entry.file.catch(() => {
      if (this.downloads.get(ingestId) === entry) this.downloads.delete(ingestId);
    });
    this.downloads.set(ingestId, entry);
    return entry;
  }

  private async drop(ingestId: string, entry: Download): Promise<void> {
    clearTimeout(entry.idle);
    if (this.downloads.get(ingestId) === entry) this.downloads.delete(ingestId);
    const path = await entry.file.catch(() => undefined);
    if (path) await rm(path, { force: true });
  }
}
