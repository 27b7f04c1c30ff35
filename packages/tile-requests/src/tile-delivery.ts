import type { RenderJob, TileEvent } from '@tilefarm/contracts';
import type { RenderQueue, TileDemand, TileEventBus } from '@tilefarm/queue';
import type { ObjectStore } from '@tilefarm/storage';
import type { PlannedTile, TilePlan, TilePlanner } from './tile-planner';

/** Job priorities per tier: room for this many places before tiles share one. */
const FAIR_SLOTS = 1000;

/**
 * Round-robin within a tier: the i-th tile of a viewer's request at tier T gets priority
 * T·1000 + i, so every viewer's first visible tile comes before anyone's second, instead of one
 * viewer's whole screen queueing ahead of the next viewer's (BullMQ is FIFO within a priority).
 */
export function jobPriority(tier: number, ordinal: number): number {
  return tier * FAIR_SLOTS + Math.min(ordinal, FAIR_SLOTS - 1);
}

/** Receives the outcome of each tile it asked for, exactly once per request. */
export type TileListener = (event: TileEvent) => void;

interface PendingEntry {
  job: RenderJob;
  listeners: Map<TileListener, number>; // listener → its priority tier for this tile
  /** The job's BullMQ priority: tier and the tile's place in its viewer's request (see jobPriority). */
  priority: number;
  ordinal: number;
  since: number;
  checkedAt: number;
}

export interface TileDeliveryOptions {
  store: ObjectStore;
  queue: RenderQueue;
  demand: TileDemand;
  bus: TileEventBus;
  planner: TilePlanner;
  /** A tile pending this long is re-checked against storage and the queue (lost events, lost jobs). */
  sweepAfterMs?: number;
  sweepIntervalMs?: number;
  onError?: (error: unknown) => void;
}

export interface DispatchResult {
  ready: PlannedTile[];
  pending: PlannedTile[];
  /** How many pending tiles joined a render that was already asked for. */
  coalesced: number;
}

/**
 * The path from "I want these tiles" to "here they are", shared by the API and the gateways:
 * subscribe first, then look in storage, then enqueue what is missing — in that order, so a tile
 * finished at any moment is either found in storage or announced to a listener already waiting.
 * A periodic sweep re-checks old pending tiles, so a lost pub/sub message or a withdrawn job
 * delays a tile but never loses it.
 */
export class TileDelivery {
  private readonly pending = new Map<string, PendingEntry>();
  private sweepTimer?: NodeJS.Timeout;
  private readonly sweepAfterMs: number;

  constructor(private readonly options: TileDeliveryOptions) {
    this.sweepAfterMs = options.sweepAfterMs ?? 3000;
  }

  async start(): Promise<void> {
    await this.options.bus.subscribe((event) => this.settle(event));
    this.sweepTimer = setInterval(() => void this.sweep().catch((e) => this.options.onError?.(e)), this.options.sweepIntervalMs ?? 1000);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Asks for tiles on behalf of one listener: stored tiles come back ready, the rest are rendered. */
  async request(plan: TilePlan, tiles: PlannedTile[], priority: number, listener: TileListener): Promise<DispatchResult> {
    const now = Date.now();
    const fresh: PendingEntry[] = [];
    const joined: PlannedTile[] = [];
    // 1. Subscribe (in memory; the bus subscription is live since start()).
    for (const [ordinal, t] of tiles.entries()) {
      let entry = this.pending.get(t.key);
      if (!entry) {
        entry = { job: this.options.planner.job(plan, t), listeners: new Map(), priority: jobPriority(priority, ordinal), ordinal, since: now, checkedAt: now };
        this.pending.set(t.key, entry);
        fresh.push(entry);
      } else if (!entry.listeners.has(listener)) {
        joined.push(t);
      }
      entry.listeners.set(listener, Math.min(priority, entry.listeners.get(listener) ?? Infinity));
    }
    // 2. Look in storage.
    const stored = await Promise.all(tiles.map((t) => this.options.store.head(t.key)));
    const ready: PlannedTile[] = [];
    const missing: PlannedTile[] = [];
    tiles.forEach((t, i) => (stored[i] ? ready : missing).push(t));
    for (const t of ready) this.detach(t.key, listener);
    // 3. Enqueue what is missing, and count this listener's demand for it.
    const freshKeys = new Set(fresh.map((e) => e.job.key));
    await this.options.demand.add(missing.map((t) => t.key));
    const toEnqueue = missing.filter((t) => freshKeys.has(t.key)).map((t) => this.pending.get(t.key)).filter((e): e is PendingEntry => e !== undefined);
    await this.options.queue.enqueue(toEnqueue.map((e) => ({ job: e.job, priority: e.priority })));
    await Promise.all(missing.filter((t) => !freshKeys.has(t.key)).map((t) => this.updatePriority(t.key)));
    return { ready, pending: missing, coalesced: joined.filter((t) => missing.includes(t)).length };
  }

  /** This listener no longer wants these tiles; a queued render nobody wants is withdrawn. */
  async release(keys: string[], listener: TileListener): Promise<number> {
    const mine = keys.filter((k) => this.pending.get(k)?.listeners.has(listener));
    const jobs = new Map(mine.map((k) => [k, this.pending.get(k)!]));
    for (const k of mine) this.detach(k, listener);
    const unwanted = await this.options.demand.release(mine);
    // Independent removals: in parallel, so a viewer racing through Z is not answered one round trip per tile.
    const removed = await Promise.all(unwanted.map((k) => this.options.queue.withdraw(k)));
    // Someone may have joined between our release and our withdraw (another process added demand
    // and its enqueue was a no-op because our job still existed): put the job back for them.
    // Their demand is counted before they enqueue, so checking after the withdraw closes the window.
    const withdrawn = unwanted.filter((_, i) => removed[i]);
    const counts = await Promise.all(withdrawn.map((k) => this.options.demand.count(k)));
    const rejoined = withdrawn.filter((_, i) => counts[i]! > 0).map((k) => jobs.get(k)!);
    await this.options.queue.enqueue(rejoined.map((e) => ({ job: e.job, priority: e.priority })));
    return withdrawn.length - rejoined.length;
  }

  /** Changes one listener's priority for tiles it waits for; the job follows the best priority here. */
  async setPriority(keys: string[], priority: number, listener: TileListener): Promise<void> {
    const mine = keys.filter((k) => this.pending.get(k)?.listeners.has(listener));
    for (const k of mine) this.pending.get(k)!.listeners.set(listener, priority);
    await Promise.all(mine.map((k) => this.updatePriority(k)));
  }

  private async updatePriority(key: string): Promise<void> {
    const entry = this.pending.get(key);
    if (!entry) return;
    const best = jobPriority(Math.min(...entry.listeners.values()), entry.ordinal);
    if (best !== entry.priority) {
      entry.priority = best;
      await this.options.queue.reprioritize(key, best);
    }
  }

  private detach(key: string, listener: TileListener): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0) this.pending.delete(key);
  }

  private settle(event: TileEvent): void {
    const entry = this.pending.get(event.key);
    if (!entry) return;
    this.pending.delete(event.key);
    for (const listener of entry.listeners.keys()) {
      try {
        listener(event);
      } catch (e) {
        this.options.onError?.(e);
      }
    }
  }

  /** Re-checks tiles pending longer than sweepAfterMs: stored → announce; no job → enqueue again. */
  private async sweep(): Promise<void> {
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
      if ((await this.options.queue.state(key)) === 'unknown' && this.pending.has(key)) {
        // The job is gone (withdrawn in a race, skipped as unwanted, or lost): ask again. The
        // listeners' demand normally still stands; only restore it if a settle wiped it.
        await this.options.demand.ensure(key);
        await this.options.queue.enqueue([{ job: entry.job, priority: entry.priority }]);
      }
    }
  }
}
