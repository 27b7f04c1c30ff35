export * from './logger';
export * from './metrics';
export * from './ingest-metrics';
export * from './ops-endpoints';
export * from './process-runner';
