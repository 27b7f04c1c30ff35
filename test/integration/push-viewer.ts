import { io, type Socket } from 'socket.io-client';
import { BullRenderQueue } from '@tilefarm/queue';
import type { TestSystem } from '../support/system';
import {
  SOCKET_PROTOCOL,
  type BudgetExceededEvent,
  type ClientToServerEvents,
  type LoadShedEvent,
  type ServerToClientEvents,
  type SimpleAck,
  type TileFailedEvent,
  type TileQueuedEvent,
  type TilesRequestAck,
} from '@tilefarm/contracts';

export type PushSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface RequestedTile {
  level: number;
  z: number;
  t: number;
  x: number;
  y: number;
  format?: 'jpeg' | 'png' | 'webp';
}

export interface TileRequest {
  dataset: string;
  spec: unknown;
  tiles: RequestedTile[];
}

interface SentRequest {
  payload: TileRequest;
  /** Keys the ack said are on their way; undefined while the ack has not come back. */
  pendingKeys?: Map<string, RequestedTile>;
}

/**
 * A viewer as the push tests see it: one WebSocket, every delivery counted per key (ack `ready` and
 * `tile:ready` alike), every notice recorded. On reconnect it asks again for whatever it is still
 * missing, as the browser client does (re-requesting is idempotent on the server).
 */
export class PushViewer {
  readonly socket: PushSocket;
  readonly deliveries = new Map<string, number>();
  readonly deliveredAt = new Map<string, number>();
  readonly urls = new Map<string, string>();
  readonly viaAck = new Set<string>();
  readonly failed = new Map<string, TileFailedEvent>();
  readonly queued: TileQueuedEvent[] = [];
  readonly budget: BudgetExceededEvent[] = [];
  readonly shed: LoadShedEvent[] = [];
  readonly sent: SentRequest[] = [];
  connects = 0;
  private waiters: Array<() => void> = [];

  constructor(url: string) {
    this.socket = io(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      auth: { protocol: SOCKET_PROTOCOL },
    });
    this.socket.on('tile:ready', (e) => this.deliver(e.key, e.url, false));
    this.socket.on('tile:failed', (e) => {
      this.failed.set(e.key, e);
      this.wake();
    });
    this.socket.on('tile:queued', (e) => this.queued.push(e));
    this.socket.on('budget:exceeded', (e) => this.budget.push(e));
    this.socket.on('load:shed', (e) => this.shed.push(e));
    this.socket.on('connect', () => {
      this.connects++;
      if (this.connects > 1) void this.askAgain();
    });
  }

  static async open(url: string): Promise<PushViewer> {
    const v = new PushViewer(url);
    await v.connected();
    return v;
  }

  async connected(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  async request(payload: TileRequest, timeoutMs = 30_000): Promise<TilesRequestAck> {
    const sent: SentRequest = { payload };
    this.sent.push(sent);
    const ack = (await this.socket.timeout(timeoutMs).emitWithAck('tiles:request', payload)) as TilesRequestAck;
    if (ack.ok) {
      sent.pendingKeys = new Map(ack.pending.map((p) => [p.key, { ...p.tile }]));
      for (const r of ack.ready) this.deliver(r.key, r.url, true);
    }
    return ack;
  }

  async viewport(payload: unknown, timeoutMs = 30_000): Promise<SimpleAck> {
    return (await this.socket.timeout(timeoutMs).emitWithAck('viewport', payload)) as SimpleAck;
  }

  async cancel(keys: string[]): Promise<SimpleAck> {
    return (await this.socket.timeout(30_000).emitWithAck('tiles:cancel', { keys })) as SimpleAck;
  }

  has(key: string): boolean {
    return this.deliveries.has(key) || this.failed.has(key);
  }

  /** Resolves when every key has been delivered (or failed); rejects after timeoutMs naming what is missing. */
  async waitFor(keys: Iterable<string>, timeoutMs = 30_000): Promise<void> {
    const wanted = [...keys];
    const deadline = Date.now() + timeoutMs;
    while (!wanted.every((k) => this.has(k))) {
      if (Date.now() > deadline) {
        const missing = wanted.filter((k) => !this.has(k));
        throw new Error(`${missing.length} of ${wanted.length} tiles never arrived, e.g. ${missing[0]}`);
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  close(): void {
    this.socket.disconnect();
  }

  /** After a reconnect: every request whose ack was lost goes again whole, the rest for the keys still missing. */
  private async askAgain(): Promise<void> {
    const again = this.sent.splice(0);
    for (const s of again) {
      const tiles = s.pendingKeys ? [...s.pendingKeys].filter(([k]) => !this.has(k)).map(([, t]) => t) : s.payload.tiles;
      if (tiles.length === 0) continue;
      try {
        await this.request({ ...s.payload, tiles });
      } catch {
        this.sent.push(s); // disconnected again: the next connect retries it
      }
    }
  }

  private deliver(key: string, url: string, viaAck: boolean): void {
    this.urls.set(key, url);
    this.deliveries.set(key, (this.deliveries.get(key) ?? 0) + 1);
    if (!this.deliveredAt.has(key)) this.deliveredAt.set(key, performance.now());
    if (viaAck) this.viaAck.add(key);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Every tile of a dataset level range, z slices [z0, z1), row-major. */
export function tilesOf(cols: number, rows: number, z0: number, z1: number, level = 0): RequestedTile[] {
  const out: RequestedTile[] = [];
  for (let z = z0; z < z1; z++) for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) out.push({ level, z, t: 0, x, y });
  return out;
}

/** A three-channel spec; `variant` changes a window, so each variant is a distinct set of cold tiles. */
export function specVariant(variant: number, format: 'jpeg' | 'png' = 'jpeg') {
  return {
    channels: [
      { index: 0, color: '#0080ff', window: [100, 2000 + variant] },
      { index: 1, color: '#00ff00', window: [100, 1500] },
      { index: 2, color: '#ff0000', window: [100, 2500] },
    ],
    format,
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function postSpec(apiUrl: string, spec: unknown): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  if (res.status !== 201) throw new Error(`POST /v1/specs → ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until no render is waiting or running, so render counters are final. */
export async function renderQueueIdle(system: TestSystem, timeoutMs: number): Promise<void> {
  const queue = new BullRenderQueue({ url: system.env.REDIS_URL!, prefix: system.prefix });
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const c = await queue.counts();
      if ((c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0) return;
      await sleep(50);
    }
  } finally {
    await queue.close();
  }
}
