export * from './redis-connection';
export * from './json-channel';
export * from './redis-script';
export * from './tile-event-bus';
export * from './tile-demand';
export * from './tile-settlement';
export * from './failed-tiles';
export * from './tenant-quota';
export type { QueueConnection } from './bullmq-connection';
export * from './bullmq-render-queue';
export * from './bullmq-render-consumer';
export * from './bullmq-ingest-queue';
export * from './ingest-tracking';
// The dashboard adapter (bull-board) is its own entry, `@tilefarm/queue/dashboard`: only the API loads it.
export type { DashboardSource } from './queue-dashboard-source';
export * from './tile-request-adapters';
export * from './retired-versions';
export * from './ingest-coordination';
