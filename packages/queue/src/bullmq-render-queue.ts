import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { RenderJob, TilefarmError, ERROR_TABLE, describeZodError, isUnavailableError } from '@tilefarm/contracts';
import { redisOptions } from './redis';

export const RENDER_QUEUE_NAME = 'render';

/** Lower is sooner (BullMQ's convention). Every job gets one: unprioritized jobs would jump the line. */
export const PRIORITY = {
  visible: 1,
  ring: 2,
  prefetch: 3,
  http: 2,
  background: 10,
} as const;

export type RenderJobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'unknown';

export interface QueuedRender {
  job: RenderJob;
  priority: number;
}

export interface RenderQueue {
  /** Adds jobs; a job whose key is already queued or running is not added again (coalescing). */
  enqueue(items: QueuedRender[]): Promise<void>;
  /** Moves a waiting job to a new priority; false if it is not waiting. */
  reprioritize(key: string, priority: number): Promise<boolean>;
  /** Removes a job that has not started; false if it is running, done, or gone. */
  withdraw(key: string): Promise<boolean>;
  state(key: string): Promise<RenderJobState>;
  /** Jobs waiting to start (all priorities). */
  depth(): Promise<number>;
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export interface QueueConnection {
  url: string;
  prefix: string;
}

function connectionFor(url: string, role: 'producer' | 'worker'): ConnectionOptions {
  const u = new URL(url);
  // BullMQ's ConnectionOptions is a union over several clients; these are ioredis options.
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    ...redisOptions(role),
  } as ConnectionOptions;
}

/** The BullMQ queue itself, for a dashboard (bull-board) that reads it directly; other code uses RenderQueue. */
export type DashboardQueue = Queue;

/** The render queue in Redis through BullMQ: the only module that imports bullmq. */
export class BullRenderQueue implements RenderQueue {
  readonly queue: Queue;

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

  async enqueue(items: QueuedRender[]): Promise<void> {
    if (items.length === 0) return;
    await this.queue.addBulk(
      items.map(({ job, priority }) => ({ name: 'render', data: job, opts: { jobId: job.key, priority } })),
    );
  }

  async reprioritize(key: string, priority: number): Promise<boolean> {
    const job = await this.queue.getJob(key);
    if (!job) return false;
    try {
      await job.changePriority({ priority });
      return true;
    } catch {
      return false; // already active or finished
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

export type RenderOutcome = 'rendered' | 'skipped';

export interface RenderJobContext {
  attempt: number;
  /** Milliseconds the job waited in the queue before this attempt started. */
  waitedMs: number;
}

export interface RenderConsumerOptions {
  connection: QueueConnection;
  concurrency: number;
  /** Lock time; renders are short, so a dead worker's jobs come back quickly. */
  lockDurationMs?: number;
  handle(job: RenderJob, context: RenderJobContext): Promise<RenderOutcome>;
  /** Called once a job will not be tried again: bad input, or retries used up. */
  onGiveUp(job: RenderJob | undefined, error: TilefarmError, cause?: unknown): Promise<void>;
}

/** Consumes the render queue; N of these run in N processes on any number of machines. */
export class BullRenderConsumer {
  private readonly worker: Worker;

  constructor(private readonly options: RenderConsumerOptions) {
    this.worker = new Worker(
      RENDER_QUEUE_NAME,
      async (job: Job) => this.process(job),
      {
        connection: connectionFor(options.connection.url, 'worker'),
        prefix: options.connection.prefix,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs ?? 15_000,
        stalledInterval: Math.max(1000, Math.floor((options.lockDurationMs ?? 15_000) / 2)),
        maxStalledCount: 5,
        autorun: true,
      },
    );
    this.worker.on('error', () => undefined);
  }

  private async process(job: Job): Promise<RenderOutcome> {
    const parsed = RenderJob.safeParse(job.data);
    if (!parsed.success) {
      const error = new TilefarmError('bad_request', `invalid render job payload: ${describeZodError(parsed.error)}`);
      await this.options.onGiveUp(undefined, error);
      throw new UnrecoverableError(error.message);
    }
    const attempt = job.attemptsMade + 1;
    try {
      return await this.options.handle(parsed.data, { attempt, waitedMs: Date.now() - job.timestamp });
    } catch (e) {
      // Anything unexpected gets the table's public message: raw errors carry file paths and hosts (logged as the cause).
      const error = e instanceof TilefarmError ? e : new TilefarmError(isUnavailableError(e) ? 'unavailable' : 'render_failed');
      // Bad input (any 4xx code) is never retried.
      const permanent = ERROR_TABLE[error.code].status < 500;
      const maxAttempts = job.opts.attempts ?? 1;
      if (permanent || attempt >= maxAttempts) {
        await this.options.onGiveUp(parsed.data, error, e);
        throw new UnrecoverableError(error.message);
      }
      throw error;
    }
  }

  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  /** Stops taking jobs and waits for running ones, at most `timeoutMs` (BullMQ's close has no bound). */
  async close(timeoutMs: number): Promise<void> {
    await closeWorkerWithin(this.worker, timeoutMs);
  }
}

/** Stops a BullMQ worker taking jobs and waits for running ones, at most `timeoutMs` (its own close has no bound). */
export async function closeWorkerWithin(worker: Worker, timeoutMs: number): Promise<void> {
  const graceful = worker.close();
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  if ((await Promise.race([graceful, timer])) === 'timeout') await worker.close(true);
}
