import { io, type Socket } from 'socket.io-client';
import {
  ERROR_TABLE,
  SOCKET_PROTOCOL,
  type ClientToServerEvents,
  type ImageFormat,
  type ServerToClientEvents,
  type TileFailedEvent,
  type TileReadyEvent,
  type TileRect,
  type TilesRequestAck,
} from '@tilefarm/contracts';
import { AccessToken } from './access-token';

/** One tile as the viewer names it: dataset, spec id and server tile address. */
export interface TileRef {
  dataset: string;
  specId: string;
  level: number;
  z: number;
  t: number;
  x: number;
  y: number;
  format: ImageFormat;
}

/** The tiles on screen, as the viewer's layer knows them (the spec already registered). */
export interface VisibleRange extends TileRect {
  dataset: string;
  specId: string;
  format: ImageFormat;
}

export interface TileDelivered {
  image: HTMLImageElement;
  /** How the tile came: announced over the socket, already stored, or the plain HTTP fallback. */
  via: 'socket' | 'http';
  renderMs: number | undefined;
}

export interface TileCallbacks {
  done(result: TileDelivered): void;
  failed(message: string): void;
}

/** What the deep-zoom view needs from a tile loader: ask for a tile, give it up, say where the view is. */
export interface TileLoader {
  load(ref: TileRef, callbacks: TileCallbacks): () => void;
  viewport(range: VisibleRange): void;
}

export interface LoaderCounts {
  connected: boolean;
  /** Asked for over the socket, waiting for the acknowledgement. */
  requested: number;
  /** Acknowledged as pending: the system is rendering them. */
  rendering: number;
  /** URL known, image downloading. */
  downloading: number;
  done: number;
  viaHttp: number;
  cancelled: number;
  failed: number;
}

export interface RenderTiming {
  ref: TileRef;
  renderMs: number;
  at: number;
}

interface Waiter {
  ref: TileRef;
  callbacks: TileCallbacks;
  state: 'requested' | 'rendering' | 'downloading' | 'closed';
  image?: HTMLImageElement;
  httpTries: number;
  /** When it last entered its state (for re-asking about tiles that waited too long). */
  since: number;
}

const READY_MEMORY = 4096;
const ACK_TIMEOUT_MS = 10_000;
const HTTP_TRIES = 3;
/** A tile acknowledged as rendering but not announced for this long is asked for again (idempotent). */
const STALE_RENDER_MS = 8_000;

function addressOf(r: { dataset: string; specId: string; level: number; z: number; t: number; x: number; y: number; format: string }): string {
  return `${r.dataset}/${r.specId}/${r.level}/${r.z}/${r.t}/${r.x}/${r.y}.${r.format}`;
}

/** The plain HTTP tile URL (bounded wait for the render): the fallback when the socket is down. */
export function httpTileUrl(apiBase: string, r: TileRef, token?: AccessToken): string {
  const url = `${apiBase}/v1/tiles/${r.dataset}/${r.specId}/${r.level}/${r.z}/${r.t}/${r.x}/${r.y}.${r.format}`;
  return token ? token.query(url) : url;
}

/**
 * Loads tiles through ONE Socket.IO connection: tiles are requested in batches as the deep-zoom
 * library asks for them, filled when `tile:ready` names their URL, cancelled when the library gives
 * them up, and the viewport is reported as it moves so the gateway can prioritize and prefetch.
 * Tiles announced before anyone asked (prefetched Z slices) are remembered, so stepping Z finds them.
 * While the socket is down every tile goes over plain HTTP instead.
 */
export class SocketTileLoader implements TileLoader {
  private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private readonly waiting = new Map<string, Set<Waiter>>();
  /** Tile URLs the gateway announced (address → url, renderMs), oldest first. */
  private readonly ready = new Map<string, { url: string; renderMs: number | undefined }>();
  private readonly addressByKey = new Map<string, string>();
  private readonly keyByAddress = new Map<string, string>();
  private batch: Waiter[] = [];
  private batchTimer: ReturnType<typeof setTimeout> | undefined;
  private cancelBatch = new Set<string>();
  private cancelTimer: ReturnType<typeof setTimeout> | undefined;
  private lastViewport: string | undefined;
  private viewportTimer: ReturnType<typeof setTimeout> | undefined;
  private pendingViewport: VisibleRange | undefined;
  private readonly counts = { connected: false, done: 0, viaHttp: 0, cancelled: 0, failed: 0 };
  readonly timings: RenderTiming[] = [];
  onChange: () => void = () => undefined;

  constructor(
    gatewayUrl: string,
    private readonly apiBase: string,
    private readonly token: AccessToken = new AccessToken(undefined),
  ) {
    // Asked at every (re)connection, so a token entered after a refusal is sent on the next attempt.
    const auth = (cb: (data: object) => void) => cb(token.value ? { protocol: SOCKET_PROTOCOL, token: token.value } : { protocol: SOCKET_PROTOCOL });
    this.socket = io(gatewayUrl, { transports: ['websocket'], auth, reconnectionDelayMax: 5000 });
    this.socket.on('connect', () => {
      this.counts.connected = true;
      this.lastViewport = undefined;
      if (this.pendingViewport) this.viewport(this.pendingViewport);
      this.onChange();
    });
    this.socket.on('disconnect', () => {
      this.counts.connected = false;
      // Events sent while disconnected are lost: whatever waits on the socket goes over HTTP now.
      for (const set of this.waiting.values()) for (const w of set) if (w.state === 'requested' || w.state === 'rendering') this.viaHttp(w);
      this.onChange();
    });
    this.socket.on('tile:ready', (e) => this.onReady(e));
    // The gateway withdraws tiles the viewport moved away from; if the view comes back before a new
    // viewport reaches it, or an event was lost, asking again costs one idempotent request.
    setInterval(() => this.askAgainForStale(), STALE_RENDER_MS / 2);
    this.socket.on('tile:failed', (e) => this.onFailed(e));
  }

  /** Connects again if down: a handshake refused for its token is not retried by socket.io itself. */
  reconnect(): void {
    if (!this.socket.connected) this.socket.connect();
  }

  get snapshot(): LoaderCounts {
    const live = { requested: 0, rendering: 0, downloading: 0 };
    for (const set of this.waiting.values()) for (const w of set) if (w.state !== 'closed') live[w.state] += 1;
    return { ...this.counts, ...live };
  }

  load(ref: TileRef, callbacks: TileCallbacks): () => void {
    const w: Waiter = { ref, callbacks, state: 'requested', httpTries: 0, since: Date.now() };
    const address = addressOf(ref);
    let set = this.waiting.get(address);
    if (!set) this.waiting.set(address, (set = new Set()));
    set.add(w);
    const known = this.ready.get(address);
    if (known) this.download(w, known.url, 'socket', known.renderMs);
    else if (!this.socket.connected) this.viaHttp(w);
    else {
      this.setState(w, 'requested');
      this.batch.push(w);
      this.batchTimer ??= setTimeout(() => this.flush(), 8);
    }
    return () => this.cancel(w);
  }

  /** Reports the visible tile range; repeated ranges are sent once, bursts at most every 100 ms. */
  viewport(range: VisibleRange): void {
    this.pendingViewport = range;
    if (this.viewportTimer) return;
    const send = () => {
      this.viewportTimer = undefined;
      const v = this.pendingViewport;
      if (!v || !this.socket.connected) return;
      const text = JSON.stringify(v);
      if (text === this.lastViewport) return;
      this.lastViewport = text;
      this.socket.emit('viewport', { dataset: v.dataset, spec: v.specId, level: v.level, z: v.z, t: v.t, x0: v.x0, y0: v.y0, x1: v.x1, y1: v.y1, format: v.format });
    };
    this.viewportTimer = setTimeout(send, 100);
  }

  private setState(w: Waiter, state: Waiter['state']): void {
    w.state = state;
    w.since = Date.now();
    this.onChange();
  }

  private askAgainForStale(): void {
    if (!this.socket.connected) return;
    const cutoff = Date.now() - STALE_RENDER_MS;
    for (const set of this.waiting.values()) {
      for (const w of set) {
        if (w.state !== 'rendering' || w.since > cutoff) continue;
        this.setState(w, 'requested');
        this.batch.push(w);
      }
    }
    if (this.batch.length > 0) this.batchTimer ??= setTimeout(() => this.flush(), 8);
  }

  private flush(): void {
    this.batchTimer = undefined;
    const groups = new Map<string, Waiter[]>();
    for (const w of this.batch) {
      if (w.state !== 'requested') continue;
      const g = `${w.ref.dataset}/${w.ref.specId}`;
      groups.set(g, [...(groups.get(g) ?? []), w]);
    }
    this.batch = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += 512) this.request(group.slice(i, i + 512));
    }
  }

  private request(group: Waiter[]): void {
    const first = group[0];
    if (!first) return;
    const tiles = group.map((w) => ({ level: w.ref.level, z: w.ref.z, t: w.ref.t, x: w.ref.x, y: w.ref.y, format: w.ref.format }));
    this.socket.timeout(ACK_TIMEOUT_MS).emit('tiles:request', { dataset: first.ref.dataset, spec: first.ref.specId, tiles }, (err: Error | null, ack: TilesRequestAck) => {
      if (err) {
        for (const w of group) if (w.state === 'requested') this.viaHttp(w);
        return;
      }
      this.onAck(group, ack);
    });
  }

  private onAck(group: Waiter[], ack: TilesRequestAck): void {
    if (!ack.ok) {
      if (ack.error.code === 'rate_limited') {
        setTimeout(() => {
          const again = group.filter((w) => w.state === 'requested');
          if (again.length > 0) this.request(again);
        }, 500);
      } else if (this.isPermanent(ack.error.code)) {
        // The request itself is wrong (spec does not fit the dataset, tile outside): HTTP would say the same.
        for (const w of group) if (w.state === 'requested') this.finish(w, () => w.callbacks.failed(`${ack.error.code}: ${ack.error.message}`), 'failed');
      } else {
        for (const w of group) if (w.state === 'requested') this.viaHttp(w);
      }
      return;
    }
    const dataset = group[0]?.ref.dataset ?? '';
    const note = (key: string, tile: { level: number; z: number; t: number; x: number; y: number; format: string }) => {
      const address = addressOf({ dataset, specId: ack.specId, ...tile });
      this.addressByKey.set(key, address);
      this.keyByAddress.set(address, key);
      return address;
    };
    for (const r of ack.ready) this.announce(note(r.key, r.tile), r.url, undefined);
    for (const p of ack.pending) {
      const address = note(p.key, p.tile);
      const waiters = this.waiting.get(address);
      if (!waiters || waiters.size === 0) {
        // Given up before the acknowledgement came: tell the gateway now.
        this.queueCancel(p.key);
        continue;
      }
      for (const w of waiters) if (w.state === 'requested') this.setState(w, 'rendering');
    }
    if (ack.rejected.length > 0) {
      // Over the viewer's budget or the system sheds load: ask again a little later.
      const rejected = new Set(ack.rejected.map((r) => note(r.key, r.tile)));
      setTimeout(() => {
        const again = group.filter((w) => w.state !== 'closed' && rejected.has(addressOf(w.ref)) && !this.ready.has(addressOf(w.ref)));
        for (const w of again) this.setState(w, 'requested');
        if (again.length > 0) this.request(again);
      }, 1000);
    }
  }

  private isPermanent(code: string): boolean {
    const status = (ERROR_TABLE as Record<string, { status: number } | undefined>)[code]?.status ?? 500;
    return status >= 400 && status < 500 && status !== 429;
  }

  private onReady(e: TileReadyEvent): void {
    const address = addressOf({ dataset: e.dataset, specId: e.spec, ...e.tile });
    this.addressByKey.set(e.key, address);
    this.keyByAddress.set(address, e.key);
    if (e.renderMs !== undefined) {
      this.timings.push({ ref: { dataset: e.dataset, specId: e.spec, ...e.tile }, renderMs: e.renderMs, at: Date.now() });
      if (this.timings.length > 200) this.timings.shift();
    }
    this.announce(address, e.url, e.renderMs);
  }

  private announce(address: string, url: string, renderMs: number | undefined): void {
    this.ready.delete(address);
    this.ready.set(address, { url, renderMs });
    if (this.ready.size > READY_MEMORY) {
      const oldest = this.ready.keys().next().value;
      if (oldest !== undefined) this.ready.delete(oldest);
    }
    for (const w of this.waiting.get(address) ?? []) {
      if (w.state === 'requested' || w.state === 'rendering') this.download(w, url, 'socket', renderMs);
    }
  }

  private onFailed(e: TileFailedEvent): void {
    const address = this.addressByKey.get(e.key);
    if (!address) return;
    for (const w of [...(this.waiting.get(address) ?? [])]) {
      if (w.state === 'requested' || w.state === 'rendering') this.finish(w, () => w.callbacks.failed(`${e.code}: ${e.message}`), 'failed');
    }
  }

  private viaHttp(w: Waiter): void {
    this.download(w, httpTileUrl(this.apiBase, w.ref, this.token), 'http', undefined);
  }

  private download(w: Waiter, url: string, via: TileDelivered['via'], renderMs: number | undefined): void {
    this.setState(w, 'downloading');
    const image = new Image();
    w.image = image;
    image.decoding = 'async';
    image.onload = () => {
      if (w.state !== 'downloading' || w.image !== image) return;
      if (via === 'http') this.counts.viaHttp += 1;
      this.finish(w, () => w.callbacks.done({ image, via, renderMs }), 'done');
    };
    image.onerror = () => {
      if (w.state !== 'downloading' || w.image !== image) return;
      // A stored URL that vanished (evicted) or an HTTP wait that timed out: try HTTP a few times.
      w.httpTries += 1;
      if (w.httpTries <= HTTP_TRIES) setTimeout(() => w.state === 'downloading' && this.viaHttp(w), 300 * w.httpTries);
      else this.finish(w, () => w.callbacks.failed(`could not load ${url}`), 'failed');
    };
    // Announced URLs are signed when signing is on; unsigned ones (tokens only) need the token.
    image.src = this.token.query(url);
  }

  private finish(w: Waiter, report: () => void, outcome: 'done' | 'failed' | 'cancelled'): void {
    this.setState(w, 'closed');
    this.counts[outcome] += 1;
    const address = addressOf(w.ref);
    const set = this.waiting.get(address);
    set?.delete(w);
    if (set && set.size === 0) this.waiting.delete(address);
    report();
    this.onChange();
  }

  private cancel(w: Waiter): void {
    if (w.state === 'closed') return;
    const wasWaitingOnSocket = w.state === 'requested' || w.state === 'rendering';
    if (w.image) {
      w.image.onload = w.image.onerror = null;
      w.image.src = '';
    }
    this.finish(w, () => undefined, 'cancelled');
    const address = addressOf(w.ref);
    const key = this.keyByAddress.get(address);
    // Only when nobody else here wants it; a key not known yet is cancelled when its ack arrives.
    if (wasWaitingOnSocket && key && !this.waiting.has(address)) this.queueCancel(key);
  }

  private queueCancel(key: string): void {
    this.cancelBatch.add(key);
    this.cancelTimer ??= setTimeout(() => {
      this.cancelTimer = undefined;
      const keys = [...this.cancelBatch];
      this.cancelBatch.clear();
      if (keys.length > 0 && this.socket.connected) this.socket.emit('tiles:cancel', { keys });
    }, 20);
  }
}
