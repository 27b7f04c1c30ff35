import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { AddressInfo } from 'node:net';
// s3rver is a real S3-protocol HTTP server storing on disk; the AWS SDK talks to it over HTTP.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

export interface RunningS3 {
  endpoint: string;
  bucket: string;
  /** s3rver's own files: tests that must see that nothing was left behind look here directly. */
  directory: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}

/**
 * s3rver 3.7 implements multipart uploads (create, upload part, complete) but not
 * AbortMultipartUpload: it answers `DELETE /{bucket}/{key}?uploadId=` with 405. This adds that one
 * operation as S3 documents it (204, the upload's parts deleted; 404 NoSuchUpload for an unknown
 * id), on s3rver's own files (`<bucket>/._S3rver_uploads/<uploadId>/`), ahead of its router.
 */
function addAbortMultipartUpload(server: { middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void>> }, directory: string): void {
  server.middleware.unshift(async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const m = /^\/([^/]+)\/.+/.exec(ctx.path);
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string' || !m || !/^[A-Za-z0-9_-]+$/.test(uploadId)) return next();
    const dir = join(directory, m[1]!, '._S3rver_uploads', uploadId);
    if (!existsSync(dir)) {
      ctx.status = 404;
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId}</UploadId></Error>`;
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    ctx.body = null;
  });
}

/** Every file s3rver holds under `bucket` (objects and in-progress multipart parts), relative to the bucket. */
export function filesInBucket(s3: Pick<RunningS3, 'directory' | 'bucket'>): string[] {
  const root = join(s3.directory, s3.bucket);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else out.push(relative(root, join(dir, e.name)));
    }
  };
  if (existsSync(root)) walk(root);
  return out.sort();
}

/** Starts an S3-protocol server on a free loopback port with one bucket; stop() removes its files. */
export async function startS3Server(bucket = 'tilefarm-test'): Promise<RunningS3> {
  const directory = mkdtempSync(join(tmpdir(), 'tilefarm-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  addAbortMultipartUpload(server, directory);
  const info = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${info.port}`;
  return {
    endpoint,
    bucket,
    directory,
    env: {
      STORAGE: 's3',
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
    },
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
