// ioredis' one door: connections by role. Everything else in this package takes a RedisClient.
import IORedis, { type RedisOptions } from 'ioredis';

export type RedisClient = IORedis;

/**
 * Connection settings by role, following BullMQ's production rules:
 * - `worker`/`subscriber`: retry forever (`maxRetriesPerRequest: null`), a worker or a subscription must survive Redis restarts;
 * - `producer`: fail fast (`enableOfflineQueue: false`, one retry) so an HTTP handler answers 503
 *   instead of hanging while Redis is down; and auto-pipelined: the commands issued in one turn of
 *   the event loop (a viewport's re-ranks and withdrawals, a request's claims, many viewers' work)
 *   go out in one socket write instead of one each. A gateway under bench:push issued ~9,800
 *   writes to Redis for ~13,000 commands; each is a system call that wakes redis-server, which on a
 *   busy machine takes the CPU from the gateway, so its event loop (every viewer's next request)
 *   fell behind. Producers never block (no BLPOP and the like; subscriptions have their own role),
 *   and replies still come back in order.
 */
export type RedisRole = 'producer' | 'worker' | 'subscriber';

export function redisOptions(role: RedisRole): RedisOptions {
  const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);
  switch (role) {
    case 'producer':
      return { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy, lazyConnect: false, enableAutoPipelining: true };
    case 'worker':
    case 'subscriber':
      return { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy };
  }
}

export function createRedis(url: string, role: RedisRole): RedisClient {
  const client = new IORedis(url, redisOptions(role));
  // Errors surface through commands and readiness checks; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  return client;
}

/** Resolves once a client is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
