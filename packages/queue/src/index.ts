export * from './redis';
export * from './bullmq-render-queue';
