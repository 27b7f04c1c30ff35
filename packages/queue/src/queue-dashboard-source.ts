import type { Queue } from 'bullmq';

/**
 * How the dashboard adapter (queue-dashboard.ts) reaches a queue's BullMQ object without it being
 * a public field: the symbol is not exported from the package, so apps cannot use the raw queue.
 */
export const DASHBOARD_QUEUE = Symbol('dashboardQueue');

export interface DashboardSource {
  readonly [DASHBOARD_QUEUE]: Queue;
}
