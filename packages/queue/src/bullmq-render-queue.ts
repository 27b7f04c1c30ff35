import { Job, Queue } from 'bullmq';
import type { QueuedRender, RenderJobState, RenderLane, RenderQueuePort } from '@tilefarm/tile-requests';
import { connectionFor, type QueueConnection } from './bullmq-connection';
import { DASHBOARD_QUEUE, type DashboardSource } from './queue-dashboard-source';

export const RENDER_QUEUE_NAME = 'render';
/** The heavy lane (priorities.ts laneOf): workers take it with WORKER_HEAVY_CONCURRENCY beside their ordinary renders. */
export const HEAVY_RENDER_QUEUE_NAME = 'render-heavy';
export const RENDER_QUEUE_NAMES: Record<RenderLane, string> = { render: RENDER_QUEUE_NAME, heavy: HEAVY_RENDER_QUEUE_NAME };

/**
 * The tile-request service's render queue (RenderQueuePort) in Redis through BullMQ: the job id is
 * the tile's content key, so identical requests coalesce. The consumer side is bullmq-render-consumer.ts.
 */
export class BullRenderQueue implements RenderQueuePort, DashboardSource {
  private readonly queue: Queue;
  private readonly heavy: Queue;

  constructor(connection: QueueConnection, options: { attempts?: number } = {}) {
    const open = (name: string) => new Queue(name, {
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
    this.queue = open(RENDER_QUEUE_NAME);
    this.heavy = open(HEAVY_RENDER_QUEUE_NAME);
    this.queue.on('error', () => undefined);
    this.heavy.on('error', () => undefined);
  }

  private lane(lane: RenderLane): Queue {
    return lane === 'heavy' ? this.heavy : this.queue;
  }

  /** For the dashboard only (queue-dashboard.ts); other code uses the RenderQueuePort methods. */
  get [DASHBOARD_QUEUE](): Queue {
    return this.queue;
  }

  /** The heavy lane, for the dashboard. */
  get heavyLane(): DashboardSource {
    return { [DASHBOARD_QUEUE]: this.heavy };
  }

  async enqueue(items: QueuedRender[]): Promise<void> {
    const add = (lane: RenderLane) => {
      const mine = items.filter((i) => i.lane === lane);
      return mine.length === 0 ? undefined : this.lane(lane).addBulk(mine.map(({ job, priority }) => ({ name: 'render', data: job, opts: { jobId: job.key, priority } })));
    };
    await Promise.all([add('render'), add('heavy')]);
  }

  async reprioritize(key: string, priority: number, lane: RenderLane): Promise<boolean> {
    // A handle by id, not getJob: changing a priority needs only the id, and fetching the whole
    // job (its spec) for each of a viewer's re-ranked tiles was most of a viewport's cost.
    const job = new Job(this.lane(lane), 'render', undefined, {}, key);
    try {
      await job.changePriority({ priority });
      return true;
    } catch {
      return false; // missing, already active or finished
    }
  }

  async withdraw(key: string, lane: RenderLane): Promise<boolean> {
    try {
      return (await this.lane(lane).remove(key)) === 1;
    } catch {
      return false; // locked by a worker: it finishes and its tile is cached
    }
  }

  async exists(key: string, lane: RenderLane): Promise<boolean> {
    // The job's hash lives from add until removal (removeOnComplete/removeOnFail, withdraw), across
    // retries and stalls: one command where getJobState probes up to eight sets. A hash that exists
    // in no set would read 'unknown' there, but re-adding it would be a no-op too (same job id).
    // HEXISTS on the field every job is stored with: BullMQ's client interface has no EXISTS.
    const q = this.lane(lane);
    return (await (await q.getBackend().client).hexists(q.toKey(key), 'timestamp')) === 1;
  }

  /** The job's BullMQ state, for tests and operators (the sweep needs only `exists`). */
  async state(key: string, lane: RenderLane): Promise<RenderJobState> {
    const s = await this.lane(lane).getJobState(key);
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
    const [a, b] = await Promise.all([this.queue.getActive(), this.heavy.getActive()]);
    return [...a, ...b].map((j) => j.id ?? '');
  }

  /** Both lanes: load shedding counts every waiting render. */
  async depth(): Promise<number> {
    const [a, b] = await Promise.all([this.queue.getJobCountByTypes('waiting', 'prioritized'), this.heavy.getJobCountByTypes('waiting', 'prioritized')]);
    return a + b;
  }

  async counts(): Promise<Record<string, number>> {
    const [a, b] = await Promise.all([this.queue, this.heavy].map((q) => q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed')));
    return Object.fromEntries(Object.keys(a!).map((k) => [k, (a![k] ?? 0) + (b![k] ?? 0)]));
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.heavy.close()]);
  }
}
