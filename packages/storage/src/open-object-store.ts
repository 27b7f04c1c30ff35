import { resolve } from 'node:path';
import { LocalObjectStore } from './local-object-store';
import type { ObjectStore } from './object-store';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store';

export type ObjectStoreSettings = { kind: 'local'; dir: string } | ({ kind: 's3' } & S3ObjectStoreOptions);

/** Builds the configured adapter; the composition roots call this with their parsed config. */
export function openObjectStore(settings: ObjectStoreSettings): ObjectStore {
  if (settings.kind === 'local') return new LocalObjectStore(resolve(settings.dir));
  const { kind: _kind, ...options } = settings;
  return new S3ObjectStore(options);
}
