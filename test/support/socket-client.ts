import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, TileReadyEvent, TileFailedEvent, TilesRequestAck } from '@tilefarm/contracts';

export type ViewerSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A test viewer: one socket, and every tile delivery it saw (ack `ready` and `tile:ready` events). */
export class TestViewer {
  readonly socket: ViewerSocket;
  readonly delivered = new Map<string, string>(); // key → url
  readonly deliveries: string[] = []; // every delivery, to catch duplicates
  readonly failed = new Map<string, TileFailedEvent>();
  private waiters: Array<() => void> = [];

  constructor(url: string, auth: Record<string, string> = {}) {
    this.socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: true, auth });
    this.socket.on('tile:ready', (e: TileReadyEvent) => this.deliver(e.key, e.url));
    this.socket.on('tile:failed', (e) => {
      this.failed.set(e.key, e);
      this.wake();
    });
  }

  async connected(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  async request(payload: unknown): Promise<TilesRequestAck> {
    const ack = (await this.socket.timeout(30_000).emitWithAck('tiles:request', payload)) as TilesRequestAck;
    if (ack.ok) for (const r of ack.ready) this.deliver(r.key, r.url);
    return ack;
  }

  /** Resolves when every key has been delivered (or failed); rejects after timeoutMs. */
  async waitFor(keys: Iterable<string>, timeoutMs = 30_000): Promise<void> {
    const wanted = [...keys];
    const done = () => wanted.every((k) => this.delivered.has(k) || this.failed.has(k));
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) {
        const missing = wanted.filter((k) => !this.delivered.has(k) && !this.failed.has(k));
        throw new Error(`${missing.length} of ${wanted.length} tiles never arrived, e.g. ${missing[0]}`);
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  close(): void {
    this.socket.disconnect();
  }

  private deliver(key: string, url: string): void {
    this.deliveries.push(key);
    this.delivered.set(key, url);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
