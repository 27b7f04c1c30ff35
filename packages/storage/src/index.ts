export * from './object-store';
export * from './local-object-store';
// Types only: the S3 adapter (and the AWS SDK) loads when openObjectStore or openS3SourceFetcher asks for it.
export type { S3ObjectStore, S3ObjectStoreOptions, S3SourceFetcher, S3SourceFetcherOptions } from './s3-object-store';
export * from './open-object-store';
