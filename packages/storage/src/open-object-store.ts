import { resolve } from 'node:path';
import { LocalObjectStore } from './local-object-store';
import type { ObjectStore } from './object-store';
import type { S3ObjectStoreOptions, S3SourceFetcher, S3SourceFetcherOptions } from './s3-object-store';

export type ObjectStoreSettings = { kind: 'local'; dir: string } | ({ kind: 's3' } & S3ObjectStoreOptions);

// The AWS SDK is loaded only by a process that uses S3: it costs start time and memory, and on
// Node 20 it prints a support warning at load, which a local-storage deployment has no use for.
function s3Module(): typeof import('./s3-object-store') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./s3-object-store') as typeof import('./s3-object-store');
}

/** Builds the configured adapter; the composition roots call this with their parsed config. */
export function openObjectStore(settings: ObjectStoreSettings): ObjectStore {
  if (settings.kind === 'local') return new LocalObjectStore(resolve(settings.dir));
  const { kind: _kind, ...options } = settings;
  return new (s3Module().S3ObjectStore)(options);
}

/** Reads ingest sources from S3 (s3:// sources); loads the SDK on first use. */
export function openS3SourceFetcher(options: S3SourceFetcherOptions): S3SourceFetcher {
  return new (s3Module().S3SourceFetcher)(options);
}
