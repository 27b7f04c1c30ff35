import { Router } from 'express';
import type { ObjectStore } from '@tilefarm/storage';
import type { RedisClient } from '@tilefarm/queue';

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness never touches a dependency; readiness checks Redis and storage, each with a short bound. */
export function healthRoutes(redis: RedisClient, store: ObjectStore, isStopping: () => boolean): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/readyz', async (_req, res) => {
    const checks = await Promise.allSettled([within(1000, redis.ping()), within(2000, store.ping())]);
    const [r, s] = checks.map((c) => c.status === 'fulfilled');
    const ok = !isStopping() && r === true && s === true;
    res.status(ok ? 200 : 503).json({ ok, redis: r, storage: s, stopping: isStopping() });
  });
  return router;
}
