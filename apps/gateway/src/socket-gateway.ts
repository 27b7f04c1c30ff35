import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { TilefarmError, type AckError, type ClientToServerEvents, type IngestProgressEvent, type ServerToClientEvents } from '@tilefarm/contracts';
import type { Logger, GatewayMetrics } from '@tilefarm/telemetry';
import { ackError, ViewerSession, type SessionDeps } from './viewer-session';
import type { HandshakeView, SocketIdentity } from './socket-auth';
import { ingestRoom, type IngestWatchers } from './ingest-watch';

export interface SocketGatewayOptions {
  allowedOrigins: string[] | '*';
  maxEventBytes: number;
  eventsPerSecond: number;
  logger: Logger;
  metrics: GatewayMetrics;
  /** Everything a session needs but its own emit. */
  session: Omit<SessionDeps, 'emit'>;
  /** Connection middleware: who the socket is, or a thrown `unauthorized` (see socket-auth.ts). */
  authenticate?: (handshake: HandshakeView) => SocketIdentity;
  /** `ingest:watch`: progress of queued ingests (refused with not_found when absent). */
  ingest?: IngestWatchers;
}

type ViewerSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A token bucket per socket: a burst of two seconds' worth, then `rate` events per second. */
class RateLimit {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly rate: number) {
    this.tokens = rate * 2;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.rate * 2, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The Socket.IO gateway: one connection per viewer carries every request and every notification. */
export class SocketGateway {
  readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  private readonly sessions = new Set<ViewerSession>();

  constructor(http: HttpServer, private readonly options: SocketGatewayOptions) {
    const origins = options.allowedOrigins;
    this.io = new Server<ClientToServerEvents, ServerToClientEvents>(http, {
      maxHttpBufferSize: options.maxEventBytes,
      cors: { origin: origins === '*' ? true : origins },
      // CORS covers long-polling only; WebSocket upgrades are checked here too.
      allowRequest: (req, callback) => {
        const origin = req.headers.origin;
        callback(null, origins === '*' || origin === undefined || origins.includes(origin));
      },
      connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
    });
    const authenticate = options.authenticate;
    if (authenticate) {
      this.io.use((socket, next) => {
        try {
          socket.data.identity = authenticate(socket.handshake);
          next();
        } catch (e) {
          const refused = new Error(e instanceof TilefarmError ? e.message : 'unauthorized') as Error & { data?: unknown };
          refused.data = { code: e instanceof TilefarmError ? e.code : 'unauthorized' };
          next(refused);
        }
      });
    }
    this.io.on('connection', (socket) => this.onConnection(socket));
  }

  get viewerCount(): number {
    return this.sessions.size;
  }

  private onConnection(socket: ViewerSocket): void {
    const { metrics, logger } = this.options;
    const identity = socket.data.identity as SocketIdentity | undefined;
    const principal = identity?.principal;
    const session = new ViewerSession({ ...this.options.session, access: identity?.access ?? this.options.session.access, tenant: principal?.kind === 'tenant' ? principal.tenant : undefined, emit: (event, ...args) => socket.emit(event, ...args) });
    this.sessions.add(session);
    metrics.connectedViewers.set(this.sessions.size);
    const limit = new RateLimit(this.options.eventsPerSecond);

    // Every handler: check the ack, rate-limit, validate (inside the session), answer errors as acks.
    const handle = <A>(name: string, work: (payload: unknown) => Promise<A>) => {
      return (payload: unknown, ack?: unknown) => {
        const reply = typeof ack === 'function' ? (ack as (a: A | AckError) => void) : undefined;
        if (!limit.take()) {
          reply?.(ackError(new TilefarmError('rate_limited', `more than ${this.options.eventsPerSecond} events per second`)));
          return;
        }
        work(payload).then(
          (answer) => reply?.(answer),
          (e: unknown) => {
            const a = ackError(e);
            if (a.error.code === 'internal') logger.error({ err: e, event: name }, 'socket event failed');
            else if (a.error.code === 'unavailable') logger.warn({ err: e, event: name }, 'socket event: a backing service is unavailable');
            reply?.(a);
          },
        );
      };
    };
    socket.on('tiles:request', handle('tiles:request', (p) => session.request(p)));
    socket.on('tiles:cancel', handle('tiles:cancel', async (p) => (await session.cancel(p), { ok: true as const })));
    socket.on('viewport', handle('viewport', async (p) => (await session.viewport(p), { ok: true as const })));
    socket.on('ingest:watch', handle('ingest:watch', async (p) => {
      if (!this.options.ingest) throw new TilefarmError('not_found', 'this gateway does not report ingests');
      const current = await this.options.ingest.watch(p, socket, identity?.principal ?? { kind: 'open' });
      if (current) socket.emit('ingest:progress', current);
      return { ok: true as const };
    }));
    socket.on('disconnect', () => {
      this.sessions.delete(session);
      metrics.connectedViewers.set(this.sessions.size);
      void session.close().catch((e: unknown) => logger.warn({ err: e }, 'releasing a closed session failed'));
    });
  }

  /** An ingest event from the workers, to every socket here that watches the job. */
  forwardIngestProgress(event: IngestProgressEvent): void {
    this.options.ingest?.seen(event);
    this.io.to(ingestRoom(event.jobId)).emit('ingest:progress', event);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
  }
}
