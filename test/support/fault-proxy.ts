import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request: forward it, answer it with a server error, or forward it late. */
export type FaultAction = 'pass' | 'fail' | { delayMs: number };

/**
 * An HTTP proxy in front of a real server (here s3rver) that injects faults by rule, like toxiproxy:
 * the processes behind it talk real S3 over real sockets and see real 503s and real slowness.
 */
export class FaultProxy {
  rule: (req: IncomingMessage) => FaultAction = () => 'pass';
  readonly counts = { passed: 0, failed: 0, delayed: 0 };

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<FaultProxy> {
    const to = new URL(target);
    let proxy: FaultProxy | undefined;
    const server = createServer((req, res) => {
      const action = proxy!.rule(req);
      if (action === 'fail') {
        proxy!.counts.failed++;
        req.resume();
        req.on('end', () => {
          res.writeHead(503, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected fault</Message></Error>');
        });
        return;
      }
      const forward = () => {
        const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      };
      if (action === 'pass') {
        proxy!.counts.passed++;
        forward();
      } else {
        proxy!.counts.delayed++;
        req.pause();
        setTimeout(forward, action.delayMs);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new FaultProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** True for an S3 PUT of a rendered tile (object keys under tiles/). */
export function isTilePut(req: IncomingMessage): boolean {
  return req.method === 'PUT' && /\/tiles\//.test(req.url ?? '');
}
