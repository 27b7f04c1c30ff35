import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { DASHBOARD_QUEUE, type DashboardSource } from './queue-dashboard-source';

/** bull-board's view of one of our queues: what the API's /admin/queues route mounts. */
export type QueueDashboardAdapter = BullMQAdapter;

/** Adapters for the queue dashboard (bull-board), so the app never holds a raw BullMQ queue. */
export function queueDashboardAdapters(queues: DashboardSource[]): QueueDashboardAdapter[] {
  return queues.map((q) => new BullMQAdapter(q[DASHBOARD_QUEUE], { readOnlyMode: false }));
}
