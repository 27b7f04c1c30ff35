import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * `/healthz` and `/metrics` for processes without Express (workers, gateways). Answers and returns
 * true for those two paths; anything else is the caller's.
 */
export function answerOpsRequest(req: IncomingMessage, res: ServerResponse, registry: Registry, health: () => { ok: boolean } & Record<string, unknown>): boolean {
  if (req.url === '/metrics') {
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'internal', message: 'Internal error.' } }));
      },
    );
    return true;
  }
  if (req.url === '/healthz') {
    const body = health();
    res.writeHead(body.ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    return true;
  }
  return false;
}

export function answerNotFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: 'not_found', message: 'No such resource.' } }));
}
