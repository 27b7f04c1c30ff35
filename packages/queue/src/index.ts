export * from './redis';
export * from './bullmq-render-queue';
export * from './bullmq-ingest-queue';
export * from './ingest-tracking';
