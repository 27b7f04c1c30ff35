import { UnrecoverableError, type ConnectionOptions, type Job, type Worker } from 'bullmq';
import { ERROR_TABLE, type TilefarmError } from '@tilefarm/contracts';
import { redisOptions } from './redis-connection';

export interface QueueConnection {
  url: string;
  prefix: string;
}

export function connectionFor(url: string, role: 'producer' | 'worker'): ConnectionOptions {
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

/** Stops a BullMQ worker taking jobs and waits for running ones, at most `timeoutMs` (its own close has no bound). */
export async function closeWorkerWithin(worker: Worker, timeoutMs: number): Promise<void> {
  const graceful = worker.close();
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  if ((await Promise.race([graceful, timer])) === 'timeout') await worker.close(true);
}

/**
 * Failures that are final whatever their status: a render stopped at its deadline would be stopped
 * there again (and each retry would cost the same CPU again).
 */
const FINAL_CODES: ReadonlySet<TilefarmError['code']> = new Set(['render_timeout']);

/** Bad input (any 4xx code, e.g. spec_too_expensive) and timeouts: another attempt would fail the same way. */
export function isFinalFailure(error: TilefarmError): boolean {
  return ERROR_TABLE[error.code].status < 500 || FINAL_CODES.has(error.code);
}

/**
 * A failed attempt of a job: bad input (any 4xx code, e.g. spec_too_expensive) and timeouts are never
 * retried, anything else until the job's attempts are used up. Throws what BullMQ needs to retry,
 * or to stop after `giveUp` ran.
 */
export async function failAttempt(job: Job, attempt: number, error: TilefarmError, giveUp: () => Promise<void>): Promise<never> {
  if (isFinalFailure(error) || attempt >= (job.opts.attempts ?? 1)) {
    await giveUp();
    throw new UnrecoverableError(error.message);
  }
  throw error;
}
