import {
  TilesCancel,
  TilesRequest,
  TilefarmError,
  Viewport,
  describeZodError,
  isTilefarmError,
  isUnavailableError,
  levelGrid,
  type AckError,
  type ImageFormat,
  type PendingTile,
  type ReadyTile,
  type ServerToClientEvents,
  type TileAddress,
  type TileEvent,
  type TilesRequestAck,
} from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import type { DatasetAccess, PlannedTile, TileDelivery, TilePlan, TilePlanner } from '@tilefarm/tile-requests';
import type { GatewayMetrics } from '@tilefarm/telemetry';
import { priorityFor, tilesAround, type ViewState } from './viewport-priority';

/** How many delivered keys a session remembers to avoid re-announcing prefetch (~100 bytes each). */
const DELIVERED_MEMORY = 4096;

type Emit = <E extends keyof ServerToClientEvents>(event: E, ...args: Parameters<ServerToClientEvents[E]>) => void;

interface Want {
  dataset: string;
  specId: string;
  tile: TileAddress;
  priority: number;
}

export interface SessionLimits {
  prefetchZ: number;
  maxPending: number;
  queuedNoticeDepth: number;
}

export interface SessionDeps {
  planner: TilePlanner;
  delivery: TileDelivery;
  store: ObjectStore;
  metrics: GatewayMetrics;
  limits: SessionLimits;
  tileUrl(key: string): string;
  /** Latest known queue depth, and whether new renders are being refused. */
  load(): { depth: number; shedding: boolean };
  access?: DatasetAccess;
  emit: Emit;
}

/** Validation and expected failures become an acknowledgement, never a thrown error or a dropped socket. */
export function ackError(e: unknown): AckError {
  const error = isTilefarmError(e) ? e : new TilefarmError(isUnavailableError(e) ? 'unavailable' : 'internal');
  return { ok: false, error: { code: error.code, message: error.message } };
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new TilefarmError('bad_request', describeZodError(r.error));
  return r.data;
}

/**
 * One viewer's connection: what it wants, at what priority, and delivery of each tile exactly once
 * (in the acknowledgement if already stored, else as a `tile:ready`/`tile:failed` event).
 */
export class ViewerSession {
  private readonly wants = new Map<string, Want>();
  private view: (ViewState & { format?: ImageFormat | undefined }) | undefined;
  private closed = false;
  private viewportSeq = 0;
  private viewportChain: Promise<void> = Promise.resolve();
  private readonly listener = (event: TileEvent) => this.onTileEvent(event);
  /** Keys recently delivered to this socket (insertion-ordered, bounded), so prefetch does not repeat them. */
  private readonly delivered = new Set<string>();

  constructor(private readonly deps: SessionDeps) {}

  get pendingCount(): number {
    return this.wants.size;
  }

  async request(raw: unknown): Promise<TilesRequestAck> {
    const req = parse(TilesRequest, raw);
    const plan = await this.deps.planner.plan(req.dataset, req.spec, req.tiles, this.deps.access);
    this.deps.metrics.tilesRequested.inc(plan.tiles.length);
    const result = await this.want(plan, plan.tiles, true);
    return { ok: true, specId: plan.specId, ...result };
  }

  async cancel(raw: unknown): Promise<void> {
    const { keys } = parse(TilesCancel, raw);
    await this.drop(keys.filter((k) => this.wants.has(k)));
  }

  /**
   * The viewer moved: re-rank what it waits for, withdraw what it moved away from, ask for what it
   * will see next. Viewports are applied one at a time, in order, and only the latest one waiting
   * is applied: a viewer scrolling faster than the gateway answers skips the slices in between
   * instead of asking for (and then withdrawing) each of them.
   */
  async viewport(raw: unknown): Promise<void> {
    const v = parse(Viewport, raw);
    const seq = ++this.viewportSeq;
    const run = this.viewportChain.then(() => (seq === this.viewportSeq && !this.closed ? this.applyViewport(v) : undefined));
    this.viewportChain = run.catch(() => undefined);
    await run;
  }

  private async applyViewport(v: Viewport): Promise<void> {
    const plan0 = await this.deps.planner.plan(v.dataset, v.spec, [{ level: v.level, z: v.z, t: v.t, x: 0, y: 0, format: v.format }], this.deps.access);
    const { cols, rows } = levelGrid(plan0.manifest, v.level);
    const prev = this.view;
    const sameStack = prev !== undefined && prev.dataset === v.dataset && prev.specId === plan0.specId && prev.level === v.level && prev.t === v.t;
    // Which way the viewer scrolls through Z (kept while it pauses on a slice).
    const zDirection = !sameStack ? 0 : v.z === prev.z ? (prev.zDirection ?? 0) : Math.sign(v.z - prev.z);
    const view = { dataset: v.dataset, specId: plan0.specId, level: v.level, z: v.z, t: v.t, x0: Math.min(v.x0, v.x1), x1: Math.min(Math.max(v.x0, v.x1), cols - 1), y0: Math.min(v.y0, v.y1), y1: Math.min(Math.max(v.y0, v.y1), rows - 1), format: v.format, zDirection };
    this.view = view;
    const k = this.deps.limits.prefetchZ;
    const gone: string[] = [];
    const regrouped = new Map<number, string[]>();
    for (const [key, want] of this.wants) {
      const p = priorityFor(view, want.dataset, want.specId, want.tile, k);
      if (p === undefined) gone.push(key);
      else if (p !== want.priority) {
        want.priority = p;
        regrouped.set(p, [...(regrouped.get(p) ?? []), key]);
      }
    }
    await Promise.all([this.drop(gone), ...[...regrouped].map(([p, keys]) => this.deps.delivery.setPriority(keys, p, this.listener))]);
    const around = tilesAround(view, k, cols, rows, plan0.manifest.sizeZ).map((a) => ({ level: v.level, t: v.t, format: v.format, ...a }));
    const plan = await this.deps.planner.plan(v.dataset, plan0.specId, around, this.deps.access);
    // Tiles this socket already received are not announced again on every later viewport.
    const fresh = plan.tiles.filter((t) => !this.wants.has(t.key) && !this.delivered.has(t.key));
    const result = await this.want(plan, fresh, false);
    // Prefetched tiles already stored are announced like any other, so the viewer can use them.
    for (const r of result.ready) {
      this.remember(r.key);
      this.deps.emit('tile:ready', { key: r.key, dataset: plan.manifest.id, spec: plan.specId, tile: r.tile, url: r.url });
    }
  }

  /** The socket is gone: everything it waited for is released (and withdrawn if nobody else wants it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop([...this.wants.keys()]);
  }

  private async want(plan: TilePlan, tiles: PlannedTile[], explicit: boolean): Promise<{ ready: ReadyTile[]; pending: PendingTile[]; rejected: PendingTile[] }> {
    const { delivery, limits, metrics } = this.deps;
    const pending: PendingTile[] = [];
    const rejected: PendingTile[] = [];
    const accepted = new Map<number, PlannedTile[]>();
    const seen = new Set<string>();
    for (const t of tiles) {
      if (seen.has(t.key)) continue;
      seen.add(t.key);
      const existing = this.wants.get(t.key);
      if (existing) {
        pending.push({ key: t.key, tile: t.tile }); // already on its way: re-requesting is idempotent
        continue;
      }
      if (this.wants.size >= limits.maxPending) {
        if (explicit) rejected.push({ key: t.key, tile: t.tile });
        continue;
      }
      const priority = priorityFor(this.view, plan.manifest.id, plan.specId, t.tile, limits.prefetchZ) ?? 10;
      // Recorded before asking, so an event arriving during the storage check is not missed.
      this.wants.set(t.key, { dataset: plan.manifest.id, specId: plan.specId, tile: t.tile, priority });
      accepted.set(priority, [...(accepted.get(priority) ?? []), t]);
    }
    const { depth, shedding } = this.deps.load();
    const ready: ReadyTile[] = [];
    for (const [priority, group] of [...accepted].sort((a, b) => a[0] - b[0])) {
      if (shedding) {
        const stored = await Promise.all(group.map((t) => this.deps.store.head(t.key)));
        const refused = group.filter((_, i) => !stored[i]);
        group.filter((_, i) => stored[i]).forEach((t) => ready.push({ key: t.key, tile: t.tile, url: this.deps.tileUrl(t.key) }));
        for (const t of group) this.wants.delete(t.key);
        if (explicit) rejected.push(...refused.map((t) => ({ key: t.key, tile: t.tile })));
        continue;
      }
      const result = await delivery.request(plan, group, priority, this.listener);
      metrics.coalesced.inc(result.coalesced);
      for (const t of result.ready) {
        // Only if no event beat the acknowledgement to it: each tile is delivered once. If one did,
        // the tile is listed as pending (its tile:ready went out before this ack), so the ack
        // still names every tile asked for.
        if (this.wants.delete(t.key)) ready.push({ key: t.key, tile: t.tile, url: this.deps.tileUrl(t.key) });
        else pending.push({ key: t.key, tile: t.tile });
      }
      for (const t of result.pending) pending.push({ key: t.key, tile: t.tile });
    }
    for (const r of ready) this.remember(r.key);
    metrics.cacheHits.inc(ready.length);
    if (rejected.length > 0) {
      if (shedding) this.deps.emit('load:shed', { reason: `render queue is over capacity (${depth} waiting)`, rejected: rejected.length });
      else this.deps.emit('budget:exceeded', { limit: limits.maxPending, inFlight: this.wants.size, rejected: rejected.length });
    }
    if (explicit && depth >= limits.queuedNoticeDepth && limits.queuedNoticeDepth > 0) {
      for (const p of pending) this.deps.emit('tile:queued', { key: p.key, position: depth });
    }
    if (this.closed) await this.drop([...this.wants.keys()]);
    return { ready, pending, rejected };
  }

  private async drop(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    for (const k of keys) this.wants.delete(k);
    const withdrawn = await this.deps.delivery.release(keys, this.listener);
    this.deps.metrics.cancelled.inc(withdrawn);
  }

  private remember(key: string): void {
    this.delivered.delete(key);
    this.delivered.add(key);
    if (this.delivered.size > DELIVERED_MEMORY) this.delivered.delete(this.delivered.values().next().value as string);
  }

  private onTileEvent(event: TileEvent): void {
    if (!this.wants.delete(event.key)) return;
    if (event.type === 'ready') {
      this.remember(event.key);
      this.deps.metrics.notifications.inc({ event: 'tile:ready' });
      this.deps.emit('tile:ready', { key: event.key, dataset: event.dataset, spec: event.specId, tile: event.tile, url: this.deps.tileUrl(event.key), renderMs: event.renderMs });
    } else {
      this.deps.metrics.notifications.inc({ event: 'tile:failed' });
      this.deps.emit('tile:failed', { key: event.key, tile: event.tile, code: event.code, message: event.message });
    }
  }
}
