import {
  MAX_TILES_PER_REQUEST,
  levelGrid,
  type ImageFormat,
  type PendingTile,
  type ReadyTile,
  type ServerToClientEvents,
  type TileEvent,
  type TileAddress,
  type TilesRequest,
  type Viewport,
} from '@tilefarm/contracts';
import { TIER } from './priorities';
import type { TileRequestService } from './tile-request-service';
import { checkPlane, type DatasetAccess, type PlannedTile, type ResolvedSpec } from './tile-planner';
import { tierFor, tilesAround, visibleRect, type Reach, type ViewState } from './viewport-rules';

/**
 * Which way a viewer moves through time: backwards only after a step back (playback, and a
 * viewer that has not moved yet, go forward); kept while it stays on one time point. A step from
 * the last time point to the first is playback wrapping, i.e. forward.
 */
function timeDirection(prev: ViewState | undefined, v: Viewport, specId: string, sizeT: number): number {
  if (prev === undefined || prev.dataset !== v.dataset || prev.specId !== specId) return 1;
  if (v.t === prev.t) return prev.tDirection ?? 1;
  const step = v.t - prev.t;
  const wrapped = sizeT > 2 && Math.abs(step) === sizeT - 1;
  return (wrapped ? -Math.sign(step) : Math.sign(step)) < 0 ? -1 : 1;
}

/** How many delivered keys a viewer remembers to avoid re-announcing prefetch (~100 bytes each). */
const DELIVERED_MEMORY = 4096;
/**
 * An explicit request for a tile this viewer was sent less than this long ago crossed its
 * tile:ready on the wire (the viewer asked before the event reached it): the answer lists it as
 * pending, as when an event beats the answer, instead of delivering it a second time. Longer than
 * a round trip on a busy network, far shorter than any viewer keeps a tile it received.
 */
const CROSSED_ON_THE_WIRE_MS = 2000;

/** A view's identity for TIER.emptyScreen: the dataset and the spec its tiles are rendered in. */
function viewId(dataset: string, specId: string): string {
  return `${dataset}\n${specId}`;
}

export type ViewerEmit = <E extends keyof ServerToClientEvents>(event: E, ...args: Parameters<ServerToClientEvents[E]>) => void;

export interface ViewerLimits {
  /** Z slices prefetched on each side of the viewport. */
  prefetchZ: number;
  /** Time points prefetched ahead of the viewed one (in the direction the viewer moves through time). */
  prefetchT: number;
  /** Tiles one viewer may wait for at once (its budget). */
  maxPending: number;
  /** Queue depth from which explicitly requested tiles get a `tile:queued` notice (0: never). */
  queuedNoticeDepth: number;
  /** The most tiles a viewport rectangle may cover (what a screen can show); a larger one is cut around its centre. */
  viewportMaxTiles: number;
  /**
   * Viewports are applied at most this often per viewer (the latest one then): the web viewer sends
   * one at most every 100 ms, and a client sending faster would only make this gateway withdraw and
   * re-rank the same tiles over and over (0: no spacing).
   */
  viewportIntervalMs: number;
}

/** What a viewer's requests cost and saved, for metrics (the gateway counts them in Prometheus). */
export interface ViewerCounters {
  requested(n: number): void;
  stored(n: number): void;
  coalesced(n: number): void;
  withdrawn(n: number): void;
  notified(event: 'tile:ready' | 'tile:failed'): void;
}

export interface ViewerTilesDeps {
  service: TileRequestService;
  limits: ViewerLimits;
  counters: ViewerCounters;
  tileUrl(key: string): string;
  access?: DatasetAccess;
  /** The tenant this viewer acts for (token holders): its viewers share one fair share of the workers. */
  tenant?: string | undefined;
  emit: ViewerEmit;
  /** Milliseconds, monotonic; tests pass their own clock. */
  now?: () => number;
  /**
   * True while this process is near saturation: viewports (prefetch and re-ranking; explicit
   * requests are not affected) are then applied at most one per BUSY_VIEWPORT_SPACING ×
   * viewportIntervalMs, so a flood of them cannot hold up everyone else's requests and health checks.
   */
  busy?: () => boolean;
}

/** How much further apart viewports are applied while the process is busy (ViewerTilesDeps.busy). */
export const BUSY_VIEWPORT_SPACING = 4;

interface Want {
  dataset: string;
  specId: string;
  tile: TileAddress;
  tier: number;
}

/**
 * One viewer's tiles: what it wants, at what tier, its budget, and delivery of each tile exactly
 * once (in the acknowledgement if already stored, else as a `tile:ready`/`tile:failed` event).
 * Payloads arrive validated (the gateway parses them with the contracts' schemas).
 */
export class ViewerTiles {
  private readonly wants = new Map<string, Want>();
  private view: (ViewState & { format?: ImageFormat | undefined }) | undefined;
  private closed = false;
  private viewportSeq = 0;
  private viewportChain: Promise<void> = Promise.resolve();
  /** When the last viewport was applied (see ViewerLimits.viewportIntervalMs). */
  private lastViewportAt = -Infinity;
  private readonly listener = (event: TileEvent) => this.onTileEvent(event);
  /**
   * The view (dataset and spec) this viewer has been shown a tile of: until it has, its screen is
   * empty and its visible tiles rank at TIER.emptyScreen.
   */
  private shown: string | undefined;
  /** Keys recently delivered to this viewer and when (insertion-ordered, bounded), so prefetch does not repeat them. */
  private readonly delivered = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly deps: ViewerTilesDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  get pendingCount(): number {
    return this.wants.size;
  }

  async request(req: TilesRequest): Promise<{ ok: true; specId: string; ready: ReadyTile[]; pending: PendingTile[]; rejected: PendingTile[] }> {
    const plan = await this.deps.service.planner.plan(req.dataset, req.spec, req.tiles, this.deps.access);
    this.deps.counters.requested(plan.tiles.length);
    const result = await this.want(plan, plan.tiles, true);
    return { ok: true, specId: plan.specId, ...result };
  }

  async cancel(keys: string[]): Promise<void> {
    await this.drop(keys.filter((k) => this.wants.has(k)));
  }

  /**
   * The viewer moved: re-rank what it waits for, withdraw what it moved away from, ask for what it
   * will see next. Viewports are applied one at a time, in order, at most one per
   * viewportIntervalMs, and only the latest one waiting is applied: a viewer scrolling faster than
   * that skips the slices in between instead of asking for (and then withdrawing) each of them.
   */
  async viewport(v: Viewport): Promise<void> {
    const seq = ++this.viewportSeq;
    const latest = () => seq === this.viewportSeq && !this.closed;
    const run = this.viewportChain.then(async () => {
      if (!latest()) return;
      const spacing = this.deps.busy?.() ? BUSY_VIEWPORT_SPACING : 1;
      const wait = this.lastViewportAt + spacing * this.deps.limits.viewportIntervalMs - this.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!latest()) return;
      this.lastViewportAt = this.now();
      await this.applyViewport(v);
    });
    this.viewportChain = run.catch(() => undefined);
    await run;
  }

  /**
   * Every cost here is bounded by the limits, never by the dataset: the rectangle is cut to
   * viewportMaxTiles, re-ranking visits at most maxPending wants, and prefetch plans positions
   * only until MAX_TILES_PER_REQUEST fresh tiles (or the budget) are found — like one tiles:request.
   */
  private async applyViewport(v: Viewport): Promise<void> {
    const { planner } = this.deps.service;
    const { maxPending, viewportMaxTiles } = this.deps.limits;
    const resolved = await planner.resolve(v.dataset, v.spec, this.deps.access);
    checkPlane(resolved.manifest, v);
    const { cols, rows } = levelGrid(resolved.manifest, v.level);
    const prev = this.view;
    const sameStack = prev !== undefined && prev.dataset === v.dataset && prev.specId === resolved.specId && prev.level === v.level && prev.t === v.t;
    // Which way the viewer scrolls through Z (kept while it pauses on a slice).
    const zDirection = !sameStack ? 0 : v.z === prev.z ? (prev.zDirection ?? 0) : Math.sign(v.z - prev.z);
    const sizeT = resolved.manifest.sizeT;
    const tDirection = timeDirection(prev, v, resolved.specId, sizeT);
    const rect = visibleRect(v, cols, rows, viewportMaxTiles);
    const view = { dataset: v.dataset, specId: resolved.specId, level: v.level, z: v.z, t: v.t, ...rect, format: v.format, zDirection, tDirection, sizeT };
    this.view = view;
    const k = this.reach;
    const gone: string[] = [];
    const regrouped = new Map<number, string[]>();
    for (const [key, want] of this.wants) {
      const tier = this.tierOf(view, want.dataset, want.specId, want.tile);
      if (tier === undefined) gone.push(key);
      else if (tier !== want.tier) {
        want.tier = tier;
        const group = regrouped.get(tier);
        if (group) group.push(key);
        else regrouped.set(tier, [key]);
      }
    }
    await Promise.all([this.drop(gone), ...[...regrouped].map(([tier, keys]) => this.deps.service.setTier(keys, tier, this.listener))]);
    // Tiles this viewer waits for or already received are not asked for (or announced) again; the
    // scan stops once the event's share is found, so it visits at most that many plus the tiles
    // skipped (bounded by maxPending and DELIVERED_MEMORY).
    const room = Math.min(MAX_TILES_PER_REQUEST, maxPending - this.wants.size);
    const fresh: PlannedTile[] = [];
    if (room > 0) {
      for (const a of tilesAround(view, k, cols, rows, resolved.manifest.sizeZ)) {
        const t = planner.tile(resolved, { level: v.level, format: v.format, ...a });
        if (this.wants.has(t.key) || this.delivered.has(t.key)) continue;
        fresh.push(t);
        if (fresh.length >= room) break;
      }
    }
    const plan = { ...resolved, tiles: fresh };
    const result = await this.want(plan, fresh, false);
    // Prefetched tiles already stored are announced like any other, so the viewer can use them.
    for (const r of result.ready) {
      this.remember(r.key);
      this.deps.emit('tile:ready', { key: r.key, dataset: plan.manifest.id, spec: plan.specId, tile: r.tile, url: r.url });
    }
  }

  /** The viewer is gone: everything it waited for is released (and withdrawn if nobody else wants it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop([...this.wants.keys()]);
  }

  private async want(plan: ResolvedSpec, tiles: PlannedTile[], explicit: boolean): Promise<{ ready: ReadyTile[]; pending: PendingTile[]; rejected: PendingTile[] }> {
    const { service, limits, counters } = this.deps;
    const pending: PendingTile[] = [];
    const rejected: PendingTile[] = [];
    const accepted = new Map<number, PlannedTile[]>();
    const seen = new Set<string>();
    for (const t of tiles) {
      if (seen.has(t.key)) continue;
      seen.add(t.key);
      if (this.wants.has(t.key) || (explicit && this.crossedOnTheWire(t.key))) {
        pending.push({ key: t.key, tile: t.tile }); // already on its way: re-requesting is idempotent
        continue;
      }
      if (this.wants.size >= limits.maxPending) {
        if (explicit) rejected.push({ key: t.key, tile: t.tile });
        continue;
      }
      const tier = this.tierOf(this.view, plan.manifest.id, plan.specId, t.tile) ?? TIER.outsideView;
      // Recorded before asking, so an event arriving during the storage check is not missed.
      this.wants.set(t.key, { dataset: plan.manifest.id, specId: plan.specId, tile: t.tile, tier });
      const group = accepted.get(tier);
      if (group) group.push(t);
      else accepted.set(tier, [t]);
    }
    const ready: ReadyTile[] = [];
    let shed = false;
    for (const [tier, group] of [...accepted].sort((a, b) => a[0] - b[0])) {
      const result = await service.request(plan, group, tier, this.listener, { tenant: this.deps.tenant });
      counters.coalesced(result.coalesced);
      if (result.refused.length > 0) {
        shed = true;
        for (const t of result.refused) this.wants.delete(t.key);
        if (explicit) rejected.push(...result.refused.map((t) => ({ key: t.key, tile: t.tile })));
      }
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
    if (ready.length > 0) this.showing(plan.manifest.id, plan.specId);
    counters.stored(ready.length);
    const { depth, shedding } = service.load();
    if (rejected.length > 0) {
      if (shed || shedding) this.deps.emit('load:shed', { reason: `render queue is over capacity (${depth} waiting)`, rejected: rejected.length });
      else this.deps.emit('budget:exceeded', { limit: limits.maxPending, inFlight: this.wants.size, rejected: rejected.length });
    }
    if (explicit && depth >= limits.queuedNoticeDepth && limits.queuedNoticeDepth > 0) {
      for (const p of pending) this.deps.emit('tile:queued', { key: p.key, position: depth });
    }
    if (this.closed) await this.drop([...this.wants.keys()]);
    return { ready, pending, rejected };
  }

  private get reach(): Reach {
    return { z: this.deps.limits.prefetchZ, t: this.deps.limits.prefetchT };
  }

  /** tierFor, with the visible tiles of a view this viewer has been shown nothing of yet ranked first. */
  private tierOf(view: ViewState | undefined, dataset: string, specId: string, tile: TileAddress): number | undefined {
    const tier = tierFor(view, dataset, specId, tile, this.reach);
    return tier === TIER.visible && this.shown !== viewId(dataset, specId) ? TIER.emptyScreen : tier;
  }

  private showing(dataset: string, specId: string): void {
    this.shown = viewId(dataset, specId);
  }

  private async drop(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    for (const k of keys) this.wants.delete(k);
    this.deps.counters.withdrawn(await this.deps.service.release(keys, this.listener));
  }

  private remember(key: string): void {
    this.delivered.delete(key);
    this.delivered.set(key, this.now());
    if (this.delivered.size > DELIVERED_MEMORY) this.delivered.delete(this.delivered.keys().next().value as string);
  }

  private crossedOnTheWire(key: string): boolean {
    const at = this.delivered.get(key);
    return at !== undefined && this.now() - at < CROSSED_ON_THE_WIRE_MS;
  }

  private onTileEvent(event: TileEvent): void {
    if (!this.wants.delete(event.key)) return;
    if (event.type === 'ready') {
      this.remember(event.key);
      this.showing(event.dataset, event.specId);
      this.deps.counters.notified('tile:ready');
      this.deps.emit('tile:ready', { key: event.key, dataset: event.dataset, spec: event.specId, tile: event.tile, url: this.deps.tileUrl(event.key), renderMs: event.renderMs });
    } else {
      this.deps.counters.notified('tile:failed');
      this.deps.emit('tile:failed', { key: event.key, tile: event.tile, code: event.code, message: event.message });
    }
  }
}
