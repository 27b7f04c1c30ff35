import { TilefarmError, asErrorCode, type TileEvent } from '@tilefarm/contracts';
import type { FailedTilesPort, QueuedRender, RenderQueuePort, TileDemandPort, TileEventsPort, TileStorePort } from './ports';
import { TIER, jobPriority, laneOf, shareWeight, type RenderLane } from './priorities';
import { batchJob, chunkGroupOf, renderBatches, type ChunkGroup } from './render-batches';
import { renderJobOf, type PlannedTile, type RequestedPosition, type ResolvedSpec, type TilePlan, type TilePlanner, type DatasetAccess } from './tile-planner';

/**
 * Storage checks and Redis commands go out this many tiles at a time, one slice after the other:
 * a viewer's 2,000 pending tiles re-ranked or withdrawn at once would otherwise build and write
 * thousands of commands, and handle their thousands of replies, in one turn of the event loop,
 * holding up every other socket and /healthz. Between slices the loop serves everyone else.
 */
const SLICE = 64;
/**
 * Slices of Redis commands in flight at once in this process, over all viewers' large batches:
 * with one slice per viewer, a flood from many sockets would again put thousands of commands in
 * one turn. Batches of one slice or less (a screen, a scroll step, an HTTP tile) do not queue
 * here: they are what a viewer waits for, and each is already bounded.
 */
const REDIS_SLICES_IN_FLIGHT = 1;
/**
 * How long a re-ranking waits (see updatePriorities): short beside a render's wait in the queue,
 * long beside the 25-50 ms between a scrolling viewer's steps.
 */
export const RERANK_DELAY_MS = 50;

/** A first-come-first-served limit on work in flight. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<R>(work: () => Promise<R>): Promise<R> {
    if (this.active < this.limit) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line (active stays counted for it).
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * `work` over `items` a slice at a time, in order; the results in the items' order. A batch larger
 * than one slice takes its slices through `gate`, if given; a smaller one goes straight.
 */
async function inSlices<T, R>(items: T[], work: (slice: T[]) => Promise<R[]>, gate?: Gate): Promise<R[]> {
  if (items.length === 0) return [];
  if (items.length <= SLICE) return work(items);
  const run = (slice: T[]) => (gate ? gate.run(() => work(slice)) : work(slice));
  const out: R[] = [];
  for (let i = 0; i < items.length; i += SLICE) out.push(...(await run(items.slice(i, i + SLICE))));
  return out;
}

/** Receives the outcome of each tile it asked for, exactly once per request. */
export type TileListener = (event: TileEvent) => void;

/** Who a tile's share of the workers is charged to: the listener (a viewer, an HTTP request) and a tenant. */
type Owner = TileListener | string;

interface PendingEntry {
  job: QueuedRender['job'];
  lane: RenderLane;
  listeners: Map<TileListener, number>; // listener → its tier for this tile
  /** The job's queue priority: tier and the tile's place (see jobPriority). */
  priority: number;
  /** Place within its tier: its order in the request, after its owners' pending extra weight (shareWeight). */
  ordinal: number;
  /** Extra weight (shareWeight - 1) charged to these owners while the tile is pending. */
  charged: { owners: Owner[]; extra: number };
  checkedAt: number;
  /** The tiles queued in one job with it (render-batches.ts), this one included; the job ranks by its best. */
  batch?: string[];
  /** The source chunk it may share with other tiles (of its plane, or its place in other z slices): render-batches.ts. */
  chunk?: ChunkGroup | undefined;
}

export interface TileRequestServiceOptions {
  planner: TilePlanner;
  queue: RenderQueuePort;
  events: TileEventsPort;
  demand: TileDemandPort;
  store: TileStorePort;
  /**
   * Tiles that recently failed for good and would fail again (a render stopped at its deadline):
   * answered with their failure at once instead of costing a worker another RENDER_TIMEOUT_MS.
   */
  failures?: FailedTilesPort;
  /** Queue depth from which new renders are refused (load shedding); stored tiles are still served. */
  maxQueueDepth: number;
  /** How often the queue depth is read. */
  depthIntervalMs: number;
  onDepth?: (depth: number) => void;
  /** A tile pending this long is re-checked against storage and the queue (lost events, lost jobs). */
  sweepAfterMs?: number;
  sweepIntervalMs?: number;
  /**
   * Re-rankings wait this long, then go to the queue once per job, only for jobs whose best rank
   * differs from the one queued (default RERANK_DELAY_MS; 0: at once, awaited by the caller).
   */
  rerankDelayMs?: number;
  onError?: (error: unknown) => void;
}

export interface RequestOptions {
  /** Read stored tiles' bytes in the one storage check (HTTP answers them), instead of only heads. */
  read?: boolean;
  /** The tenant the listener acts for: its tiles share one fair share across its viewers (see shareWeight). */
  tenant?: string | undefined;
}

export interface DispatchResult {
  /** Stored already (with the bytes when asked to read). */
  ready: Array<PlannedTile & { body?: Buffer }>;
  /** On their way: the listener hears of each once. */
  pending: PlannedTile[];
  /** Not stored, and refused because the queue is over its budget (nothing was subscribed or enqueued). */
  refused: PlannedTile[];
  /** How many pending tiles joined a render that was already asked for. */
  coalesced: number;
}

/** A plain HTTP tile: stored (found or rendered while waiting), or still pending when not waiting. */
export type HttpTile =
  | { kind: 'image'; plan: TilePlan; tile: PlannedTile; body: Buffer; fromStore: boolean }
  | { kind: 'pending'; plan: TilePlan; tile: PlannedTile };

/**
 * The tile-request core shared by the API and the gateways: the path from "I want these tiles" to
 * "here they are", and every rule on the way. Subscribe first, then look in storage (once), then
 * enqueue what is missing — in that order, so a tile finished at any moment is either found in
 * storage or announced to a listener already waiting. Identical tiles coalesce into one job;
 * a render nobody wants any more is withdrawn; while the queue is over its budget new renders are
 * refused. A periodic sweep re-checks old pending tiles, so a lost event or a withdrawn job delays
 * a tile but never loses it.
 */
export class TileRequestService {
  readonly planner: TilePlanner;
  private readonly pending = new Map<string, PendingEntry>();
  /** Extra weight of each owner's pending tiles (fair share, see shareWeight). */
  private readonly backlog = new Map<Owner, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sweepAfterMs: number;
  private queueDepth = 0;
  private readonly redisGate = new Gate(REDIS_SLICES_IN_FLIGHT);
  private readonly rerankDelayMs: number;
  /** Pending tiles whose job may need a new rank, applied together after rerankDelayMs. */
  private readonly rerankDue = new Set<string>();
  private rerankTimer: NodeJS.Timeout | undefined;
  private reranking: Promise<void> = Promise.resolve();

  constructor(private readonly options: TileRequestServiceOptions) {
    this.planner = options.planner;
    this.sweepAfterMs = options.sweepAfterMs ?? 3000;
    this.rerankDelayMs = options.rerankDelayMs ?? RERANK_DELAY_MS;
  }

  /** Subscribes to tile events (resolves once live) and starts the sweep and the depth reading. */
  async start(): Promise<void> {
    await this.options.events.subscribe((event) => this.settle(event));
    const every = (ms: number, work: () => Promise<void>) => {
      const timer = setInterval(() => void work(), ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.sweepIntervalMs ?? 1000, () => this.sweep().catch((e) => this.options.onError?.(e)));
    // Redis down: readiness and the request paths report it; the last depth stands meanwhile.
    every(this.options.depthIntervalMs, () => this.readDepth().then(
      () => undefined,
      () => undefined,
    ));
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
    clearTimeout(this.rerankTimer);
    this.rerankTimer = undefined;
  }

  /** Applies the re-rankings waiting for their delay now (tests read the queue after it). */
  async flushRanks(): Promise<void> {
    clearTimeout(this.rerankTimer);
    this.rerankTimer = undefined;
    const due = [...this.rerankDue];
    this.rerankDue.clear();
    this.reranking = this.reranking.then(() => this.applyPriorities(due)).catch((e: unknown) => this.options.onError?.(e));
    await this.reranking;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Latest known queue depth, and whether new renders are being refused. */
  load(): { depth: number; shedding: boolean } {
    return { depth: this.queueDepth, shedding: this.queueDepth >= this.options.maxQueueDepth };
  }

  async readDepth(): Promise<number> {
    this.queueDepth = await this.options.queue.depth();
    this.options.onDepth?.(this.queueDepth);
    return this.queueDepth;
  }

  /** Asks for tiles on behalf of one listener at one tier: stored tiles come back ready, the rest are rendered. */
  async request(plan: ResolvedSpec, tiles: PlannedTile[], tier: number, listener: TileListener, options: RequestOptions = {}): Promise<DispatchResult> {
    const look = (t: PlannedTile) => (options.read ? this.options.store.get(t.key) : this.options.store.head(t.key));
    if (this.load().shedding) {
      const found = await inSlices(tiles, (slice) => Promise.all(slice.map(look)));
      const ready = tiles.flatMap((t, i) => (found[i] ? [withBody(t, found[i])] : []));
      return { ready, pending: [], refused: tiles.filter((_, i) => !found[i]), coalesced: 0 };
    }
    const now = Date.now();
    const fresh = new Set<string>();
    const joined = new Set<string>();
    const owners: Owner[] = options.tenant === undefined ? [listener] : [listener, `tenant:${options.tenant}`];
    // 1. Subscribe (in memory; the event subscription is live since start()).
    for (const [ordinal, t] of tiles.entries()) {
      let entry = this.pending.get(t.key);
      if (!entry) {
        // Fair share: after the extra weight its owners already have pending, and its own.
        const extra = shareWeight(t.cost) - 1;
        const place = ordinal + Math.max(...owners.map((o) => this.backlog.get(o) ?? 0)) + extra;
        entry = { job: renderJobOf(plan, t), lane: laneOf(t.cost), listeners: new Map(), priority: jobPriority(tier, place), ordinal: place, charged: { owners, extra }, checkedAt: now, chunk: chunkGroupOf(plan.manifest, t.tile) };
        this.charge(entry, 1);
        this.pending.set(t.key, entry);
        fresh.add(t.key);
      } else if (!entry.listeners.has(listener)) {
        joined.add(t.key);
      }
      entry.listeners.set(listener, Math.min(tier, entry.listeners.get(listener) ?? Infinity));
    }
    // 2. Look in storage, once.
    const found = await inSlices(tiles, (slice) => Promise.all(slice.map(look)));
    const ready: DispatchResult['ready'] = [];
    const notStored: PlannedTile[] = [];
    tiles.forEach((t, i) => (found[i] ? ready.push(withBody(t, found[i])) : notStored.push(t)));
    for (const t of ready) this.detach(t.key, listener);
    // 2b. A tile that failed for good recently fails again at once (it stays pending for the
    // caller: the listener hears tile:failed, after this answer, like any other failure).
    // 3. Count this listener's demand for what is not stored, and enqueue what nobody asked for yet.
    // The failure lookup and the demand go out together, and for a request of one slice or less (a
    // screen, a scroll step, an HTTP tile: what someone waits for) with a queue of batch jobs, the
    // claims too: the claim script counts the demand of the tiles handed to it in the same step
    // (enqueueWanted), so a cold tile waits on two round trips in a row (demand, lookup and claims;
    // then the jobs' add) instead of three, each the slower the busier this process is (bench:push's
    // first visible tile, docs/capacity.md). A failure is rare: its demand is taken back, and its
    // claim dropped, before its job would be added.
    const failures = this.options.failures;
    const { queue } = this.options;
    const wantedAtOnce = queue.enqueueWanted !== undefined && (queue.batchTiles ?? 1) > 1 && notStored.length <= SLICE;
    const batchesOf = (tilesToEnqueue: PlannedTile[]) => {
      const entries = tilesToEnqueue.filter((t) => fresh.has(t.key)).map((t) => this.pending.get(t.key)).filter((e): e is PendingEntry => e !== undefined);
      const batches = renderBatches(entries, queue.batchTiles ?? 1);
      for (const b of batches) {
        if (b.length < 2) continue;
        const keys = b.map((e) => e.job.key);
        const priority = Math.min(...b.map((e) => e.priority));
        for (const e of b) Object.assign(e, { batch: keys, priority });
      }
      return batches;
    };
    const lookup = failures ? inSlices(notStored, (slice) => failures.find(slice.map((t) => t.key)), this.redisGate) : Promise.resolve([]);
    let enqueued: Promise<void> | undefined;
    let counted: Promise<unknown>;
    if (wantedAtOnce) {
      const batches = batchesOf(notStored);
      const inBatches = new Set(batches.flat().map((e) => e.job.key));
      const skipped = lookup.then((found) => new Set(notStored.filter((_, i) => found[i]).map((t) => t.key)));
      enqueued = queue.enqueueWanted!(batches.map(queuedBatch), skipped);
      // The rest (tiles this process has a job for already) are counted beside the claims.
      counted = this.options.demand.add(notStored.filter((t) => !inBatches.has(t.key)).map((t) => t.key));
    } else {
      counted = inSlices(notStored, async (slice) => (await this.options.demand.add(slice.map((t) => t.key)), []), this.redisGate);
    }
    // enqueueWanted drops its claims itself if the lookup fails; the request fails with it.
    const [failed] = await Promise.all([lookup, counted, enqueued]);
    const missing = notStored.filter((_, i) => !failed[i]);
    const failedTiles = notStored.filter((_, i) => failed[i]);
    if (failedTiles.length > 0) await this.options.demand.release(failedTiles.map((t) => t.key));
    notStored.forEach((t, i) => {
      const failure = failed[i];
      if (failure) setImmediate(() => this.failAt(t, plan, listener, failure));
    });
    if (!enqueued) await inSlices(batchesOf(missing), async (slice) => (await queue.enqueue(slice.map(queuedBatch)), []), this.redisGate);
    await this.updatePriorities(missing.filter((t) => !fresh.has(t.key)).map((t) => t.key));
    return { ready, pending: notStored, refused: [], coalesced: missing.filter((t) => joined.has(t.key)).length };
  }

  /** This listener no longer wants these tiles; a queued render nobody wants is withdrawn. Returns how many were. */
  async release(keys: string[], listener: TileListener): Promise<number> {
    const mine = keys.filter((k) => this.pending.get(k)?.listeners.has(listener));
    const jobs = new Map(mine.map((k) => [k, this.pending.get(k)!]));
    for (const k of mine) this.detach(k, listener);
    const unwanted = await inSlices(mine, (slice) => this.options.demand.release(slice), this.redisGate);
    // Independent removals: in parallel within a slice, so a viewer racing through Z is not answered one round trip per tile.
    const removed = await inSlices(unwanted, (slice) => Promise.all(slice.map((k) => this.options.queue.withdraw(k, jobs.get(k)!.lane))), this.redisGate);
    // Someone may have joined between our release and our withdraw (another process added demand
    // and its enqueue was a no-op because our job still existed): put the job back for them.
    // Their demand is counted before they enqueue, so checking after the withdraw closes the window.
    const withdrawn = unwanted.filter((_, i) => removed[i]);
    const counts = await inSlices(withdrawn, (slice) => Promise.all(slice.map((k) => this.options.demand.count(k))), this.redisGate);
    const rejoined = withdrawn.filter((_, i) => counts[i]! > 0).map((k) => jobs.get(k)!);
    await this.options.queue.enqueue(rejoined.map(queued));
    return withdrawn.length - rejoined.length;
  }

  /** Changes one listener's tier for tiles it waits for; the job follows the best tier of all its listeners. */
  async setTier(keys: string[], tier: number, listener: TileListener): Promise<void> {
    const mine = keys.filter((k) => this.pending.get(k)?.listeners.has(listener));
    for (const k of mine) this.pending.get(k)!.listeners.set(listener, tier);
    await this.updatePriorities(mine);
  }

  /**
   * One tile over plain HTTP: the stored bytes, or a render the caller waits for (at most `waitMs`)
   * or does not wait for (`pending`). Refused with queue_full while the queue is over its budget.
   */
  async httpTile(
    dataset: string,
    specRef: unknown,
    position: RequestedPosition,
    options: { wait: boolean; waitMs: number; access?: DatasetAccess; /** The tenant the request acts for: its fair share, as for its viewers. */ tenant?: string | undefined },
  ): Promise<HttpTile> {
    const plan = await this.planner.plan(dataset, specRef, [position], options.access);
    const tile = plan.tiles[0]!;
    let settle: (event: TileEvent | undefined) => void = () => undefined;
    const outcome = new Promise<TileEvent | undefined>((resolve) => (settle = resolve));
    const listener = (event: TileEvent) => settle(event);
    // Each HTTP request is its own listener (no backlog of its own): the tenant's share is what
    // puts one tenant's expensive HTTP tiles behind its own pending weight.
    const result = await this.request(plan, [tile], TIER.http, listener, { read: true, tenant: options.tenant });
    const stored = result.ready[0]?.body;
    if (stored) return { kind: 'image', plan, tile, body: stored, fromStore: true };
    if (result.refused.length > 0) throw new TilefarmError('queue_full', 'the render queue is over capacity; try again shortly');
    if (!options.wait) return { kind: 'pending', plan, tile };
    const timer = setTimeout(() => settle(undefined), options.waitMs);
    const event = await outcome;
    clearTimeout(timer);
    if (!event) {
      await this.release([tile.key], listener);
      throw new TilefarmError('render_timeout', `tile not rendered within ${options.waitMs} ms; try again`);
    }
    if (event.type === 'failed') throw new TilefarmError(asErrorCode(event.code, 'render_failed'), event.message);
    const body = await this.options.store.get(tile.key);
    if (!body) throw new TilefarmError('render_failed', 'tile announced but not found in storage');
    return { kind: 'image', plan, tile, body, fromStore: false };
  }

  /** Tells one listener of a remembered failure, unless it let go of the tile meanwhile. */
  private failAt(t: PlannedTile, plan: ResolvedSpec, listener: TileListener, failure: { code: string; message: string }): void {
    const entry = this.pending.get(t.key);
    if (!entry?.listeners.has(listener)) return;
    this.detach(t.key, listener);
    try {
      listener({ type: 'failed', key: t.key, dataset: plan.manifest.id, specId: plan.specId, tile: t.tile, code: failure.code, message: failure.message });
    } catch (e) {
      this.options.onError?.(e);
    }
  }

  /**
   * A job's rank follows its listeners' tiers, but a viewer moving through Z re-ranks every tile it
   * waits for at each step, many times a second, and back again: the ranks are computed when the
   * delay is over, so a tile whose best rank went back to the queued one costs no Redis call.
   */
  private async updatePriorities(keys: string[]): Promise<void> {
    if (this.rerankDelayMs <= 0) return this.applyPriorities(keys);
    for (const k of keys) this.rerankDue.add(k);
    if (this.rerankDue.size > 0 && !this.rerankTimer) {
      this.rerankTimer = setTimeout(() => void this.flushRanks(), this.rerankDelayMs);
      this.rerankTimer.unref();
    }
  }

  private async applyPriorities(keys: string[]): Promise<void> {
    await inSlices(keys, (slice) => Promise.all(slice.map((k) => this.updatePriority(k))), this.redisGate);
  }

  private async updatePriority(key: string): Promise<void> {
    const entry = this.pending.get(key);
    if (!entry) return;
    // A batch job ranks by the best of its tiles still pending here (the job moves as one).
    const members = entry.batch ? entry.batch.map((k) => this.pending.get(k)).filter((e): e is PendingEntry => e?.batch === entry.batch) : [entry];
    const best = Math.min(...members.map((e) => jobPriority(Math.min(...e.listeners.values()), e.ordinal)));
    if (best !== entry.priority) {
      for (const e of members) e.priority = best;
      await this.options.queue.reprioritize(key, best, entry.lane);
    }
  }

  private detach(key: string, listener: TileListener): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0) this.forget(key, entry);
  }

  /** Adds (sign 1) or takes back (-1) a pending tile's extra weight from its owners' backlog. */
  private charge(entry: PendingEntry, sign: 1 | -1): void {
    if (entry.charged.extra === 0) return;
    for (const owner of entry.charged.owners) {
      const left = (this.backlog.get(owner) ?? 0) + sign * entry.charged.extra;
      if (left > 0) this.backlog.set(owner, left);
      else this.backlog.delete(owner);
    }
  }

  private forget(key: string, entry: PendingEntry): void {
    this.pending.delete(key);
    this.charge(entry, -1);
  }

  private settle(event: TileEvent): void {
    const entry = this.pending.get(event.key);
    if (!entry) return;
    this.forget(event.key, entry);
    for (const listener of entry.listeners.keys()) {
      try {
        listener(event);
      } catch (e) {
        this.options.onError?.(e);
      }
    }
  }

  /** Re-checks tiles pending longer than sweepAfterMs: stored → announce; no job → enqueue again. */
  async sweep(): Promise<void> {
    const now = Date.now();
    const due = [...this.pending.values()].filter((e) => now - e.checkedAt >= this.sweepAfterMs).slice(0, 200);
    for (const entry of due) {
      entry.checkedAt = now;
      const key = entry.job.key;
      if (await this.options.store.head(key)) {
        const { dataset, specId, tile } = entry.job;
        this.settle({ type: 'ready', key, dataset, specId, tile });
        continue;
      }
      if (!(await this.options.queue.exists(key, entry.lane)) && this.pending.has(key)) {
        // The job is gone (withdrawn in a race, skipped as unwanted, or lost): ask again. The
        // listeners' demand normally still stands; only restore it if a settle wiped it.
        await this.options.demand.ensure(key);
        await this.options.queue.enqueue([queued(entry)]);
      }
    }
  }
}

/** A tile queued again on its own (re-joined after a withdraw, or by the sweep): it leaves its batch. */
function queued(e: PendingEntry): QueuedRender {
  delete e.batch;
  return { job: e.job, priority: e.priority, lane: e.lane };
}

/** One job for tiles grouped by renderBatches: the batch's order, its first (best) tile's priority. */
function queuedBatch(entries: PendingEntry[]): QueuedRender {
  const first = entries[0]!;
  return { job: batchJob(entries.map((e) => e.job)), priority: Math.min(...entries.map((e) => e.priority)), lane: first.lane };
}

function withBody(t: PlannedTile, found: unknown): PlannedTile & { body?: Buffer } {
  return Buffer.isBuffer(found) ? { ...t, body: found } : t;
}
