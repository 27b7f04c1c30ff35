import type { DatasetManifest, RenderJob, TileEvent } from '@tilefarm/contracts';
import { DatasetCatalog } from '@tilefarm/datasets';
import type { ByteRange, ObjectInfo, ObjectStore, PutOptions } from '@tilefarm/storage';
import {
  SpecRegistry,
  TilePlanner,
  TileRequestService,
  type QueuedRender,
  type RenderJobState,
  type RenderQueuePort,
  type TileDemandPort,
  type FailedTilesPort,
  type TileFailure,
  type TileEventsPort,
  type TileRequestServiceOptions,
} from '@tilefarm/tile-requests';

// In-memory fakes of the tile-request service's ports, for unit tests of the core and of the
// apps' thin adapters over it. The multi-process suites in test/ prove the real adapters.

/** An object store in a Map; `holdTileReads` delays reads of rendered tiles (for race tests). */
export class MemoryObjectStore implements ObjectStore {
  readonly kind = 'memory';
  readonly objects = new Map<string, Buffer>();
  /** Storage checks of rendered tiles so far (what a request cost in storage round trips). */
  tileHeads = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  async put(key: string, body: Buffer, _options?: PutOptions): Promise<void> {
    this.objects.set(key, Buffer.from(body));
  }
  async get(key: string): Promise<Buffer | undefined> {
    if (key.startsWith('tiles/')) await this.gate;
    return this.objects.get(key);
  }
  async getRange(key: string, range: ByteRange): Promise<Buffer | undefined> {
    const body = await this.get(key);
    if (!body) return undefined;
    return 'suffixLength' in range ? body.subarray(Math.max(0, body.length - range.suffixLength)) : body.subarray(range.offset, range.offset + range.length);
  }
  async head(key: string): Promise<ObjectInfo | undefined> {
    if (key.startsWith('tiles/')) {
      this.tileHeads++;
      await this.gate;
    }
    const body = this.objects.get(key);
    return body && { size: body.length };
  }
  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
  async *list(prefix: string): AsyncIterable<string> {
    for (const k of [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort()) yield k;
  }
  async ping(): Promise<void> {}

  /** Reads of rendered tiles wait from now until the returned function is called. */
  holdTileReads(): () => void {
    this.gate = new Promise((r) => (this.openGate = r));
    return () => {
      this.gate = undefined;
      this.openGate?.();
    };
  }
}

interface FakeJob extends QueuedRender {
  state: 'waiting' | 'active';
}

function tilesOfJob(job: RenderJob): Array<{ key: string; tile: RenderJob['tile'] }> {
  return [{ key: job.key, tile: job.tile }, ...(job.batch ?? [])];
}

/**
 * A render queue like BullRenderQueue. With batchTiles 1 (default), keyed by tile key as BullMQ
 * with job id = key: coalesces, reprioritizes, withdraws waiting jobs. With more, jobs carry several
 * tiles under their own id and own them through claims (tile key → job id), as render-claims.ts does.
 */
export class FakeRenderQueue implements RenderQueuePort {
  /** By job id: the tile key, or a batch job's own id. */
  readonly jobs = new Map<string, FakeJob>();
  /** Batch mode: the job that owns each tile's render. */
  readonly claims = new Map<string, string>();
  /** Every tile actually added, in order (coalesced adds are not). */
  readonly added: string[] = [];
  /** Batch mode: the tile keys of every job added, in order. */
  readonly batches: string[][] = [];
  readonly withdrawn: string[] = [];
  /** Every re-ranking asked of the queue, by tile key, in order. */
  readonly reranked: string[] = [];
  /** Overrides the depth the service reads (load-shedding tests). */
  depthOverride: number | undefined;
  private seq = 0;

  /** Batch mode with a demand to count into: enqueueWanted, as BullRenderQueue has it. */
  readonly enqueueWanted?: (items: QueuedRender[], skipped: Promise<ReadonlySet<string>>) => Promise<void>;

  constructor(
    readonly batchTiles = 1,
    demand?: FakeTileDemand,
  ) {
    if (batchTiles > 1 && demand) {
      this.enqueueWanted = async (items, skipped) => {
        // Counted at once, as the claim script does, before the lookup's answer; added after it.
        for (const { job } of items) demand.increment(tilesOfJob(job).map((t) => t.key));
        const skip = await skipped;
        await this.enqueue(
          items.flatMap((item) => {
            const [first, ...rest] = tilesOfJob(item.job).filter((t) => !skip.has(t.key));
            if (!first) return [];
            const { batch: _batch, ...single } = item.job;
            return [{ ...item, job: { ...single, key: first.key, tile: first.tile, ...(rest.length > 0 && { batch: rest }) } }];
          }),
        );
      };
    }
  }

  async enqueue(items: QueuedRender[]): Promise<void> {
    for (const { job, priority, lane } of items) {
      if (this.batchTiles <= 1) {
        if (this.jobs.has(job.key)) continue;
        this.jobs.set(job.key, { job, priority, lane, state: 'waiting' });
        this.added.push(job.key);
        continue;
      }
      const id = `b${++this.seq}-0`;
      const mine = tilesOfJob(job).filter((t) => {
        const owner = this.claims.get(t.key);
        return !(owner !== undefined && this.jobs.has(owner));
      });
      if (mine.length === 0) continue;
      for (const t of mine) this.claims.set(t.key, id);
      const [first, ...rest] = mine as [{ key: string; tile: RenderJob['tile'] }, ...Array<{ key: string; tile: RenderJob['tile'] }>];
      const { batch: _batch, ...single } = job;
      this.jobs.set(id, { job: { ...single, key: first.key, tile: first.tile, ...(rest.length > 0 && { batch: rest }) }, priority, lane, state: 'waiting' });
      this.added.push(...mine.map((t) => t.key));
      this.batches.push(mine.map((t) => t.key));
    }
  }
  private idOf(key: string): string {
    return this.claims.get(key) ?? key;
  }
  async reprioritize(key: string, priority: number): Promise<boolean> {
    this.reranked.push(key);
    const j = this.jobs.get(this.idOf(key));
    if (j?.state !== 'waiting') return false;
    j.priority = priority;
    return true;
  }
  async withdraw(key: string): Promise<boolean> {
    const id = this.idOf(key);
    const j = this.jobs.get(id);
    if (this.claims.has(key)) {
      if (j?.state === 'active') return false;
      this.claims.delete(key);
      if (j && !tilesOfJob(j.job).some((t) => this.claims.get(t.key) === id)) this.jobs.delete(id);
      this.withdrawn.push(key);
      return true;
    }
    if (j?.state !== 'waiting') return false;
    this.jobs.delete(key);
    this.withdrawn.push(key);
    return true;
  }
  async exists(key: string): Promise<boolean> {
    return this.jobs.has(this.idOf(key));
  }
  async state(key: string): Promise<RenderJobState> {
    return this.jobs.get(this.idOf(key))?.state ?? 'unknown';
  }
  async depth(): Promise<number> {
    if (this.depthOverride !== undefined) return this.depthOverride;
    return this.batchTiles > 1 ? this.claims.size : [...this.jobs.values()].filter((j) => j.state === 'waiting').length;
  }

  /** Waiting tile keys in the order workers would render them (priority, then insertion; a batch in its order). */
  order(): string[] {
    return [...this.jobs.entries()]
      .filter(([, j]) => j.state === 'waiting')
      .sort((a, b) => a[1].priority - b[1].priority)
      .flatMap(([id, j]) => tilesOfJob(j.job).filter((t) => this.batchTiles <= 1 || this.claims.get(t.key) === id).map((t) => t.key));
  }
  priorityOf(key: string): number | undefined {
    return this.jobs.get(this.idOf(key))?.priority;
  }

  /** Plays a worker taking one tile: its one-tile job (throws if none owns it); the tile leaves its job. */
  take(key: string): RenderJob {
    const id = this.idOf(key);
    const j = this.jobs.get(id);
    const t = j && tilesOfJob(j.job).find((x) => x.key === key);
    if (!j || !t) throw new Error(`no job for ${key}`);
    this.claims.delete(key);
    if (!tilesOfJob(j.job).some((x) => this.claims.get(x.key) === id)) this.jobs.delete(id);
    const { batch: _batch, ...single } = j.job;
    return { ...single, key: t.key, tile: t.tile };
  }
}

/** Tile events in memory: `publish` reaches every subscriber at once. */
export class FakeTileEvents implements TileEventsPort {
  private readonly listeners: Array<(event: TileEvent) => void> = [];
  async subscribe(listener: (event: TileEvent) => void): Promise<void> {
    this.listeners.push(listener);
  }
  publish(event: TileEvent): void {
    for (const l of this.listeners) l(event);
  }
}

/** Demand counts per key, shared by every "process" built on it (gateways, API, workers). */
export class FakeTileDemand implements TileDemandPort {
  readonly counts = new Map<string, number>();
  async add(keys: string[]): Promise<void> {
    this.increment(keys);
  }
  /** One more reference per key (add, and FakeRenderQueue.enqueueWanted's claims). */
  increment(keys: string[]): void {
    for (const k of keys) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  async release(keys: string[]): Promise<string[]> {
    const gone: string[] = [];
    for (const k of keys) {
      const n = (this.counts.get(k) ?? 0) - 1;
      if (n <= 0) {
        this.counts.delete(k);
        gone.push(k);
      } else this.counts.set(k, n);
    }
    return gone;
  }
  async ensure(key: string): Promise<void> {
    if (!this.counts.has(key)) this.counts.set(key, 1);
  }
  async count(key: string): Promise<number> {
    return this.counts.get(key) ?? 0;
  }
  // The worker's side: a settled tile needs no count; settle tells how many still wanted it.
  async clear(key: string): Promise<void> {
    this.counts.delete(key);
  }
  async settle(key: string): Promise<number> {
    const n = this.counts.get(key) ?? 0;
    this.counts.delete(key);
    return n;
  }
}

/** Remembered final failures, like FailedTiles in Redis: each until its time is up. */
export class FakeFailedTiles implements FailedTilesPort {
  readonly entries = new Map<string, { failure: TileFailure; until: number }>();
  async remember(key: string, failure: TileFailure, ttlMs: number): Promise<void> {
    if (ttlMs > 0) this.entries.set(key, { failure, until: Date.now() + ttlMs });
  }
  async find(keys: string[]): Promise<Array<TileFailure | undefined>> {
    return keys.map((k) => {
      const e = this.entries.get(k);
      return e && e.until > Date.now() ? e.failure : undefined;
    });
  }
}

/** 600×300 at 256: 3×2 tiles at level 0, three levels; 5 z. Only the manifest: the core never reads pixels. */
export const DATASET: DatasetManifest = {
  v: 1,
  id: 'cells',
  version: 1,
  name: 'cells',
  tenant: 'public',
  width: 600,
  height: 300,
  sizeZ: 5,
  sizeT: 1,
  tileSize: 256,
  levels: 3,
  dtype: 'uint16',
  channels: [{ label: 'DAPI', color: '#0080ff', window: [0, 4000] }],
  physicalSize: { x: 0.325, y: 0.325, z: 1, unit: 'µm' },
  sourceEncoding: 'raw-v1',
  createdAt: '2026-01-01T00:00:00.000Z',
};
/** The same image as 6 time points (for time prefetch). */
export const TIMELAPSE: DatasetManifest = { ...DATASET, id: 'timelapse', name: 'timelapse', sizeT: 6 };
/**
 * A whole slide, the main use case: 131072² at 256 is 512×512 = 262,144 tiles at level 0, ten
 * levels, 5 z. Only the manifest, as above; a viewport over all of level 0 must cost what a screen does.
 */
export const WHOLE_SLIDE: DatasetManifest = { ...DATASET, id: 'slide', name: 'slide', width: 131_072, height: 131_072, levels: 10 };
export const SPEC = { channels: [{ index: 0, color: '#ff0000', window: [0, 4000] as [number, number] }], format: 'png' as const };

export interface Core {
  service: TileRequestService;
  store: MemoryObjectStore;
  queue: FakeRenderQueue;
  events: FakeTileEvents;
  demand: FakeTileDemand;
  failures: FakeFailedTiles;
  specId: string;
  /** Plays a worker: stores the tile, clears its demand and job, announces it. */
  render(key: string): Promise<void>;
  /** Plays a worker giving up on a tile. */
  fail(key: string, code?: string): void;
}

/** A tile-request service over in-memory fakes, with one small synthetic dataset and one registered spec. */
export async function buildCore(options: Partial<TileRequestServiceOptions> = {}, queueOptions: { batchTiles?: number } = {}): Promise<Core> {
  const store = new MemoryObjectStore();
  const catalog = new DatasetCatalog(store, 0);
  await catalog.publish(DATASET, { v: 1, dataset: DATASET.id, version: DATASET.version, planes: [] });
  await catalog.publish(TIMELAPSE, { v: 1, dataset: TIMELAPSE.id, version: TIMELAPSE.version, planes: [] });
  await catalog.publish(WHOLE_SLIDE, { v: 1, dataset: WHOLE_SLIDE.id, version: WHOLE_SLIDE.version, planes: [] });
  const specs = new SpecRegistry(store);
  const { id: specId } = await specs.register(SPEC);
  const demand = new FakeTileDemand();
  const queue = new FakeRenderQueue(queueOptions.batchTiles, demand);
  const events = new FakeTileEvents();
  const failures = new FakeFailedTiles();
  // Ranks apply at once here (rerankDelayMs 0), so a policy test reads the queue right after its
  // call; the delayed re-ranking has tests of its own.
  const service = new TileRequestService({ planner: new TilePlanner(catalog, specs), queue, events, demand, failures, store, maxQueueDepth: 1000, depthIntervalMs: 60_000, sweepIntervalMs: 60_000, rerankDelayMs: 0, ...options });
  await service.start();
  return {
    service,
    store,
    queue,
    events,
    demand,
    failures,
    specId,
    async render(key) {
      const { dataset, specId: s, tile } = queue.take(key);
      await store.put(key, Buffer.from(`tile ${key}`));
      demand.counts.delete(key);
      events.publish({ type: 'ready', key, dataset, specId: s, tile });
    },
    fail(key, code = 'render_failed') {
      const { dataset, specId: s, tile } = queue.take(key);
      demand.counts.delete(key);
      events.publish({ type: 'failed', key, dataset, specId: s, tile, code, message: 'it broke' });
    },
  };
}

/** Records every event a listener hears. */
export function recorder(): { listener: (e: TileEvent) => void; heard: TileEvent[] } {
  const heard: TileEvent[] = [];
  return { listener: (e) => heard.push(e), heard };
}
