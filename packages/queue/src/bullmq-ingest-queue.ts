import { FlowProducer, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import {
  IngestFinishJob,
  IngestPlaneJob,
  IngestStartJob,
  TilefarmError,
  describeZodError,
} from '@tilefarm/contracts';
import { createRedis, type RedisClient } from './redis-connection';
import { closeWorkerWithin, failAttempt, type QueueConnection } from './bullmq-connection';

// bullmq is imported only in this package (its one owner), one file per queue and side: the
// ingest flow shares nothing with the render queue's coalescing, priorities and withdrawals.

export const INGEST_QUEUE_NAME = 'ingest';

/** Job names on the ingest queue: one `start`, then a flow of `unit` children under one `finish` parent. */
export type IngestJobName = 'start' | 'unit' | 'finish';
export type IngestJobPayload = IngestStartJob | IngestPlaneJob | IngestFinishJob;

const ATTEMPTS = 3;
const BACKOFF = { type: 'exponential', delay: 1000 } as const;

/** Adds ingest work: the API adds `start`; the worker that planned adds the per-unit flow. */
export class BullIngestQueue {
  private readonly redis: RedisClient;
  private readonly queue: Queue;
  private readonly flows: FlowProducer;

  /** `producer` fails fast (HTTP handlers answer 503); `worker` waits out Redis restarts. */
  constructor(
    connection: QueueConnection,
    role: 'producer' | 'worker' = 'producer',
  ) {
    this.redis = createRedis(connection.url, role);
    this.queue = new Queue(INGEST_QUEUE_NAME, { connection: this.redis, prefix: connection.prefix });
    this.queue.on('error', () => undefined);
    this.flows = new FlowProducer({ connection: this.redis, prefix: connection.prefix });
    this.flows.on('error', () => undefined);
  }

  /** Queues the first step; the job id is the ingest's id, so adding it twice is a no-op. */
  async start(job: IngestStartJob): Promise<void> {
    await this.queue.add('start', job, { jobId: job.jobId, attempts: ATTEMPTS, backoff: BACKOFF, removeOnComplete: true, removeOnFail: true });
  }

  /**
   * Queues one `unit` job per unit under a `finish` parent that runs once all are done and gets
   * their results. Deterministic ids make a repeated call (a retried `start`) add nothing new
   * while the first flow exists. A unit that fails for good fails the parent, so nothing publishes.
   */
  async addUnits(job: Omit<IngestPlaneJob, 'unit'>, units: number): Promise<void> {
    const finish: IngestFinishJob = { v: 1, jobId: job.jobId, dataset: job.dataset, units };
    await this.flows.add({
      name: 'finish',
      queueName: INGEST_QUEUE_NAME,
      data: finish,
      opts: { jobId: `${job.jobId}-finish`, attempts: ATTEMPTS, backoff: BACKOFF, removeOnComplete: true, removeOnFail: true },
      children: Array.from({ length: units }, (_, unit) => ({
        name: 'unit',
        queueName: INGEST_QUEUE_NAME,
        data: { ...job, unit } satisfies IngestPlaneJob,
        opts: {
          jobId: `${job.jobId}-u${unit}`,
          attempts: ATTEMPTS,
          backoff: BACKOFF,
          failParentOnFailure: true,
          // The parent keeps each child's result in its own hash, so the child itself can go.
          removeOnComplete: true,
          removeOnFail: true,
        },
      })),
    });
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'waiting-children', 'active', 'delayed', 'failed', 'completed');
  }

  async close(): Promise<void> {
    await this.flows.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }
}

export interface IngestJobContext {
  attempt: number;
}

export interface IngestHandlers {
  /** Plans the ingest and calls `BullIngestQueue.addUnits`. */
  start(job: IngestStartJob, context: IngestJobContext): Promise<void>;
  /** Ingests one unit; the result (JSON) is handed to `finish`. */
  unit(job: IngestPlaneJob, context: IngestJobContext): Promise<unknown>;
  /** Publishes, given every unit's result. */
  finish(job: IngestFinishJob, unitResults: unknown[], context: IngestJobContext): Promise<void>;
  /** A job that will not be tried again (bad input, or retries used up): the ingest has failed. */
  giveUp(name: IngestJobName, job: IngestJobPayload | undefined, error: TilefarmError): Promise<void>;
}

export interface IngestConsumerOptions {
  connection: QueueConnection;
  concurrency: number;
  /**
   * Lock time. A unit is long CPU-heavy work done in awaited steps, so the lock is renewed while
   * it runs; a dead worker's unit is taken over after about this long.
   */
  lockDurationMs?: number;
  handlers: IngestHandlers;
}

const SCHEMAS = { start: IngestStartJob, unit: IngestPlaneJob, finish: IngestFinishJob } as const;

/** Consumes the ingest queue; every worker process runs one, so the units of one file spread over all of them. */
export class BullIngestConsumer {
  private readonly redis: RedisClient;
  private readonly worker: Worker;

  constructor(private readonly options: IngestConsumerOptions) {
    const lockDuration = options.lockDurationMs ?? 60_000;
    this.redis = createRedis(options.connection.url, 'worker');
    this.worker = new Worker(INGEST_QUEUE_NAME, async (job: Job) => this.process(job), {
      connection: this.redis,
      prefix: options.connection.prefix,
      concurrency: options.concurrency,
      lockDuration,
      stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
      maxStalledCount: 3,
      autorun: true,
    });
    this.worker.on('error', () => undefined);
  }

  private async process(job: Job): Promise<unknown> {
    const name = job.name as IngestJobName;
    const schema = SCHEMAS[name];
    const parsed = schema?.safeParse(job.data);
    if (!schema || !parsed?.success) {
      const error = new TilefarmError('bad_request', `invalid ingest job "${String(job.name).slice(0, 40)}": ${parsed && !parsed.success ? describeZodError(parsed.error) : 'unknown job name'}`);
      await this.options.handlers.giveUp(name, undefined, error);
      throw new UnrecoverableError(error.message);
    }
    const attempt = job.attemptsMade + 1;
    const context = { attempt };
    const { handlers } = this.options;
    try {
      switch (name) {
        case 'start':
          await handlers.start(parsed.data as IngestStartJob, context);
          return null;
        case 'unit':
          return await handlers.unit(parsed.data as IngestPlaneJob, context);
        case 'finish':
          return await handlers.finish(parsed.data as IngestFinishJob, Object.values(await job.getChildrenValues()), context).then(() => null);
      }
    } catch (e) {
      const error = e instanceof TilefarmError ? e : new TilefarmError('internal', e instanceof Error ? e.message : String(e));
      // Bad input (unreadable file, path outside the root...) is never retried.
      return failAttempt(job, attempt, error, () => handlers.giveUp(name, parsed.data as IngestJobPayload, error));
    }
  }

  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  /** Stops taking jobs and waits for running ones, at most `timeoutMs`; an interrupted unit runs again elsewhere. */
  async close(timeoutMs: number): Promise<void> {
    await closeWorkerWithin(this.worker, timeoutMs);
    this.redis.disconnect();
  }
}
