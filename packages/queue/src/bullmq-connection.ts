import type { ConnectionOptions, Worker } from 'bullmq';
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
