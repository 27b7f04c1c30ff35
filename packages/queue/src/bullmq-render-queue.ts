import { Job, Queue } from 'bullmq';
import type { QueuedRender, RenderJobState, RenderQueuePort } from '@tilefarm/tile-requests';
import { connectionFor, type QueueConnection } from './bullmq-connection';
import { DASHBOARD_QUEUE, type DashboardSource } from './queue-dashboard-source';

export const RENDER_QUEUE_NAME = 'render';

/**
 * The tile-request service's render queue (RenderQueuePort) in Redis through BullMQ: the job id is
 * the tile's content key, so identical requests coalesce. The consumer side is bullmq-render-consumer.ts.
 */
export class BullRenderQueue implements RenderQueuePort, DashboardSource {
  private readonly queue: Queue;

  constructor(connection: QueueConnection, options: { attempts?: number } = {}) {
    this.queue = new Queue(RENDER_QUEUE_NAME, {
      connection: connectionFor(connection.url, 'producer'),
      prefix: connection.prefix,
      defaultJobOptions: {
        // Done jobs are removed at once: the stored tile is the record, and a finished job id must
        // not block the next render of the same key (e.g. after the tile was evicted).
        removeOnComplete: true,
        removeOnFail: true,
        attempts: options.attempts ?? 4,
        backoff: { type: 'exponential', delay: 200 },
      },
    });
    this.queue.on('error', () => undefined);
  }

  /** For the dashboard only (queue-dashboard.ts); other code uses the RenderQueuePort methods. */
  get [DASHBOARD_QUEUE](): Queue {
    return this.queue;
  }

  async enqueue(items: QueuedRender[]): Promise<void> {
    if (items.length === 0) return;
    await this.queue.addBulk(
      items.map(({ job, priority }) => ({ name: 'render', data: job, opts: { jobId: job.key, priority } })),
    );
  }

  async reprioritize(key: string, priority: number): Promise<boolean> {
    // A handle by id, not getJob: changing a priority needs only the id, and fetching the whole
    // job (its spec) for each of a viewer's re-ranked tiles was most of a viewport's cost.
    const job = new Job(this.queue, 'render', undefined, {}, key);
    try {
      await job.changePriority({ priority });
      return true;
    } catch {
      return false; // missing, already active or finished
    }
  }

  async withdraw(key: string): Promise<boolean> {
    try {
      return (await this.queue.remove(key)) === 1;
    } catch {
      return false; // locked by a worker: it finishes and its tile is cached
    }
  }

  async state(key: string): Promise<RenderJobState> {
    const s = await this.queue.getJobState(key);
    switch (s) {
      case 'waiting':
      case 'prioritized':
      case 'waiting-children':
        return 'waiting';
      case 'active':
      case 'completed':
      case 'failed':
      case 'delayed':
        return s;
      default:
        return 'unknown';
    }
  }

  /** Keys of the jobs workers hold right now (for fault tests and operators). */
  async activeKeys(): Promise<string[]> {
    return (await this.queue.getActive()).map((j) => j.id ?? '');
  }

  async depth(): Promise<number> {
    return this.queue.getJobCountByTypes('waiting', 'prioritized');
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
