import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { RenderJob, TilefarmError, describeZodError, isUnavailableError } from '@tilefarm/contracts';
import { closeWorkerWithin, connectionFor, failAttempt, type QueueConnection } from './bullmq-connection';
import type { RenderLane } from '@tilefarm/tile-requests';
import { RENDER_QUEUE_NAMES } from './bullmq-render-queue';

export type RenderOutcome = 'rendered' | 'skipped';

export interface RenderJobContext {
  /** The BullMQ job id: the tile's content key (also when absent), or a batch job's own id (render-claims.ts). */
  jobId?: string;
  attempt: number;
  /** Milliseconds the job waited in the queue before this attempt started. */
  waitedMs: number;
}

export interface RenderConsumerOptions {
  connection: QueueConnection;
  /** Which lane this consumer takes (default the ordinary one); a worker runs one consumer per lane. */
  lane?: RenderLane;
  concurrency: number;
  /** Lock time; renders are short, so a dead worker's jobs come back quickly. */
  lockDurationMs?: number;
  handle(job: RenderJob, context: RenderJobContext): Promise<RenderOutcome>;
  /** Called once a job will not be tried again: bad input, or retries used up (`jobId` as in the context). */
  onGiveUp(job: RenderJob | undefined, error: TilefarmError, cause?: unknown, jobId?: string): Promise<void>;
}

/** Consumes the render queue; N of these run in N processes on any number of machines. */
export class BullRenderConsumer {
  private readonly worker: Worker;

  constructor(private readonly options: RenderConsumerOptions) {
    this.worker = new Worker(
      RENDER_QUEUE_NAMES[options.lane ?? 'render'],
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
    const jobId = job.id ?? parsed.data.key;
    try {
      return await this.options.handle(parsed.data, { jobId, attempt, waitedMs: Date.now() - job.timestamp });
    } catch (e) {
      // Anything unexpected gets the table's public message: raw errors carry file paths and hosts (logged as the cause).
      const error = e instanceof TilefarmError ? e : new TilefarmError(isUnavailableError(e) ? 'unavailable' : 'render_failed');
      return failAttempt(job, attempt, error, () => this.options.onGiveUp(parsed.data, error, e, jobId));
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
