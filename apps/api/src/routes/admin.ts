import { createHash, timingSafeEqual } from 'node:crypto';
import { dirname } from 'node:path';
import { Router, type Request, type RequestHandler } from 'express';
import { createBullBoard } from '@bull-board/api';
import { TilefarmError } from '@tilefarm/contracts';
import type { QueueDashboardAdapter } from '@tilefarm/queue/dashboard';
import { DashboardServerAdapter } from '../dashboard-server-adapter';

export const ADMIN_BASE_PATH = '/admin/queues';
const COOKIE = 'tilefarm_admin';

/** Compares digests so neither the length nor the content of the token leaks through timing. */
function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function cookieValue(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * Admin token check: `Authorization: Bearer <token>`, or `?token=<token>` once (which sets an
 * HttpOnly cookie scoped to the dashboard, so its own asset and API requests carry the token), or that cookie.
 */
export function requireAdminToken(token: string): RequestHandler {
  return (req, res, next) => {
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    const query = typeof req.query.token === 'string' ? req.query.token : undefined;
    const cookie = cookieValue(req, COOKIE);
    const given = bearer ?? query ?? cookie;
    if (given === undefined || !sameToken(given, token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="tilefarm admin"');
      next(new TilefarmError('unauthorized', 'the admin dashboard needs the admin token (Authorization: Bearer, or ?token=)'));
      return;
    }
    if (query !== undefined) {
      const secure = req.secure ? '; Secure' : '';
      res.setHeader('Set-Cookie', `${COOKIE}=${encodeURIComponent(query)}; Path=${ADMIN_BASE_PATH}; HttpOnly; SameSite=Strict${secure}`);
    }
    next();
  };
}

/**
 * The BullMQ dashboard (bull-board) at /admin/queues, behind the admin token. Without a token
 * configured the dashboard does not exist: the router adds nothing and the path is a 404.
 */
export function adminRoutes(options: { token: string | undefined; queues: QueueDashboardAdapter[] }): Router {
  const router = Router();
  if (options.token === undefined) return router;
  const serverAdapter = new DashboardServerAdapter(ADMIN_BASE_PATH);
  // uiBasePath given: bull-board finds its UI with eval(require.resolve(...)) otherwise.
  createBullBoard({ queues: options.queues, serverAdapter, options: { uiBasePath: dirname(require.resolve('@bull-board/ui/package.json')) } });
  router.use(ADMIN_BASE_PATH, requireAdminToken(options.token), serverAdapter.getRouter() as RequestHandler);
  return router;
}
