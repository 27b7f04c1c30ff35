import { Job, Queue } from 'bullmq';
import { RenderJob } from '@tilefarm/contracts';
import type { QueuedRender, RenderJobState, RenderLane, RenderQueuePort } from '@tilefarm/tile-requests';
import { connectionFor, type QueueConnection } from './bullmq-connection';
import { DASHBOARD_QUEUE, type DashboardSource } from './queue-dashboard-source';
import type { RedisClient } from './redis-connection';
import { CLAIMED_TILE_LIVE, CLAIM_GRACE_MS, CLAIM_TILES, CLAIM_WANTED_TILES, PRUNE_CLAIMS, WITHDRAW_CLAIMED_TILE, renderBatchSeqKey, renderClaimsKey } from './render-claims';
import { tileDemandKey } from './tile-demand';

export const RENDER_QUEUE_NAME = 'render';
/** The heavy lane (priorities.ts laneOf): workers take it with WORKER_HEAVY_CONCURRENCY beside their ordinary renders. */
export const HEAVY_RENDER_QUEUE_NAME = 'render-heavy';
export const RENDER_QUEUE_NAMES: Record<RenderLane, string> = { render: RENDER_QUEUE_NAME, heavy: HEAVY_RENDER_QUEUE_NAME };

/**
 * The tile-request service's render queue (RenderQueuePort) in Redis through BullMQ. With
 * `batchTiles` 1 a job is one tile and its id is the tile's content key, so identical requests
 * coalesce by id. With more, a job carries up to that many tiles (RenderJob.batch) under its own
 * id, and coalescing goes through render claims (render-claims.ts): a tile a live job owns is not
 * queued again. Withdrawal, re-ranking and existence checks understand both kinds of job in either
 * setting (jobs of the other kind stay queued while the setting changes in a rolling restart).
 * The consumer side is bullmq-render-consumer.ts.
 */
export class BullRenderQueue implements RenderQueuePort, DashboardSource {
  private readonly queue: Queue;
  private readonly heavy: Queue;
  readonly batchTiles: number;
  private readonly claims: string;
  private readonly seq: string;
  /** The tile demand hash (tile-demand.ts): enqueueWanted counts into it. */
  private readonly demand: string;
  /** Where the next look for claims of vanished jobs starts (HSCAN cursor, see depth()). */
  private pruneCursor = '0';
  private depthReads = 0;

  /** Claims counted before any are looked over for vanished jobs (see depth()). */
  private readonly pruneClaimsAbove: number;

  constructor(connection: QueueConnection, options: { attempts?: number; /** Most tiles per job (RENDER_BATCH_TILES); 1: a job per tile. */ batchTiles?: number; pruneClaimsAbove?: number } = {}) {
    this.batchTiles = Math.max(1, options.batchTiles ?? 1);
    this.pruneClaimsAbove = options.pruneClaimsAbove ?? 1000;
    this.claims = renderClaimsKey(connection.prefix);
    this.seq = renderBatchSeqKey(connection.prefix);
    this.demand = tileDemandKey(connection.prefix);
    const open = (name: string) => new Queue(name, {
      connection: connectionFor(connection.url, 'producer'),
      prefix: connection.prefix,
      defaultJobOptions: {
        // Done jobs are removed at once: the stored tile is the record, and a finished job id must
        // not block the next render of the same key (e.g. after the tile was evicted).
        removeOnComplete: true,
        removeOnFail: true,
        attempts: options.attempts ?? 4,
        backoff: { type: 'exponential', delay: 200 },
      },
    });
    this.queue = open(RENDER_QUEUE_NAME);
    this.heavy = open(HEAVY_RENDER_QUEUE_NAME);
    this.queue.on('error', () => undefined);
    this.heavy.on('error', () => undefined);
  }

  private lane(lane: RenderLane): Queue {
    return lane === 'heavy' ? this.heavy : this.queue;
  }

  /** For the dashboard only (queue-dashboard.ts); other code uses the RenderQueuePort methods. */
  get [DASHBOARD_QUEUE](): Queue {
    return this.queue;
  }

  /** The heavy lane, for the dashboard. */
  get heavyLane(): DashboardSource {
    return { [DASHBOARD_QUEUE]: this.heavy };
  }

  async enqueue(items: QueuedRender[]): Promise<void> {
    if (this.batchTiles > 1) return this.enqueueClaimed(items);
    const add = (lane: RenderLane) => {
      const mine = items.filter((i) => i.lane === lane);
      return mine.length === 0 ? undefined : this.lane(lane).addBulk(mine.map(({ job, priority }) => ({ name: 'render', data: job, opts: { jobId: job.key, priority } })));
    };
    await Promise.all([add('render'), add('heavy')]);
  }

  /**
   * Claims each item's tiles (one script per item, pipelined), then adds one job per item holding
   * the tiles it claimed, in the item's order; tiles a live job already owns are coalesced into it.
   */
  private async enqueueClaimed(items: QueuedRender[]): Promise<void> {
    if (items.length === 0) return;
    await this.addClaimed(items, await this.claim(items, false), new Set());
  }

  /**
   * RenderQueuePort.enqueueWanted: each item's claim script counts the tiles' demand too
   * (claim-wanted-render-tiles), so the requester's count and its claims are one round trip, sent
   * before the failure lookup answers; the jobs follow once `skipped` is known, without those tiles.
   */
  async enqueueWanted(items: QueuedRender[], skipped: Promise<ReadonlySet<string>>): Promise<void> {
    if (this.batchTiles <= 1) throw new Error('enqueueWanted needs batch jobs (RENDER_BATCH_TILES > 1)');
    // Its failure reaches the caller through the caller's own lookup; a claim failing first must
    // not leave it unhandled (an unhandled rejection ends the process).
    skipped.catch(() => undefined);
    if (items.length === 0) return;
    const owners = await this.claim(items, true);
    // Claimed here, never to be added: dropped at once (else they would hold their tiles for the
    // claim grace period). Also when the lookup failed: the caller's request fails with it.
    const drop = (skip: (key: string) => boolean) =>
      this.client().then((redis) =>
        Promise.all(items.flatMap(({ job, lane }, i) => tilesOf(job).filter((t, j) => skip(t.key) && owners[i]![j + 1] === owners[i]![0]).map((t) => WITHDRAW_CLAIMED_TILE.run(redis, [this.claims, this.lane(lane).toKey(''), t.key])))),
      );
    let skip: ReadonlySet<string>;
    try {
      skip = await skipped;
    } catch (e) {
      await drop(() => true).catch(() => undefined);
      throw e;
    }
    if (skip.size > 0) await drop((key) => skip.has(key));
    await this.addClaimed(items, owners, skip);
  }

  /** Runs the claim script of each item (pipelined); per item its new job id, then each tile's owner. */
  private async claim(items: QueuedRender[], countDemand: boolean): Promise<string[][]> {
    const redis = await this.client();
    return Promise.all(
      items.map(({ job, lane }) => {
        const tiles = tilesOf(job).map((t) => t.key);
        const run = countDemand
          ? CLAIM_WANTED_TILES.run(redis, [this.claims, this.seq, this.demand, this.lane(lane).toKey(''), CLAIM_GRACE_MS, ...tiles])
          : CLAIM_TILES.run(redis, [this.claims, this.seq, this.lane(lane).toKey(''), CLAIM_GRACE_MS, ...tiles]);
        return run as Promise<string[]>;
      }),
    );
  }

  /** One job per item holding the tiles it claimed (`skip`ped ones left out), in the item's order. */
  private async addClaimed(items: QueuedRender[], owners: string[][], skip: ReadonlySet<string>): Promise<void> {
    const adds: Record<RenderLane, Array<{ name: string; data: RenderJob; opts: { jobId: string; priority: number } }>> = { render: [], heavy: [] };
    items.forEach(({ job, priority, lane }, i) => {
      const [id, ...owner] = owners[i]!;
      const claimed = tilesOf(job).filter((t, j) => owner[j] === id && !skip.has(t.key));
      if (claimed.length === 0) return; // every tile is on its way in another job (or skipped)
      const [first, ...rest] = claimed as [{ key: string; tile: RenderJob['tile'] }, ...Array<{ key: string; tile: RenderJob['tile'] }>];
      const { batch: _batch, ...single } = job;
      adds[lane].push({ name: 'render', data: { ...single, key: first.key, tile: first.tile, ...(rest.length > 0 && { batch: rest }) }, opts: { jobId: id!, priority } });
    });
    await Promise.all((['render', 'heavy'] as const).map((lane) => (adds[lane].length === 0 ? undefined : this.lane(lane).addBulk(adds[lane]))));
  }

  async reprioritize(key: string, priority: number, lane: RenderLane): Promise<boolean> {
    // A handle by id, not getJob: changing a priority needs only the id, and fetching the whole
    // job (its spec) for each of a viewer's re-ranked tiles was most of a viewport's cost. A claimed
    // tile's job is its batch's: the whole batch moves (the service ranks a batch by its best tile).
    const owner = (await this.ownerOf(key)) ?? key;
    const job = new Job(this.lane(lane), 'render', undefined, {}, owner);
    try {
      await job.changePriority({ priority });
      return true;
    } catch {
      return false; // missing, already active or finished
    }
  }

  async withdraw(key: string, lane: RenderLane): Promise<boolean> {
    const q = this.lane(lane);
    if (this.batchTiles > 1) {
      const out = (await WITHDRAW_CLAIMED_TILE.run(await this.client(), [this.claims, q.toKey(''), key])) as [string, number] | null;
      if (out) {
        // -1: its job is running (the worker checks the tile's demand before rendering it).
        if (Number(out[1]) < 0) return false;
        // The last claimed tile of a job that has not started: the job goes too (else a worker takes
        // it to find nothing to do). Not waited for: the tile is withdrawn already (its claim is
        // gone), and a viewer moving on withdraws hundreds of tiles a slice at a time.
        if (Number(out[1]) === 1) void q.remove(out[0]).catch(() => 0);
        return true;
      }
      // No claim: a job keyed by this tile (queued before batches were switched on), if any.
    }
    try {
      return (await q.remove(key)) === 1;
    } catch {
      return false; // locked by a worker: it finishes and its tile is cached
    }
  }

  async exists(key: string, lane: RenderLane): Promise<boolean> {
    // The job's hash lives from add until removal (removeOnComplete/removeOnFail, withdraw), across
    // retries and stalls: one command where getJobState probes up to eight sets. A hash that exists
    // in no set would read 'unknown' there, but re-adding it would be a no-op too (same job id).
    // HEXISTS on the field every job is stored with: BullMQ's client interface has no EXISTS.
    // A claimed tile: its claim and its job's hash, in one script.
    const q = this.lane(lane);
    const redis = await this.client();
    const keyed = async () => (await redis.hexists(q.toKey(key), 'timestamp')) === 1;
    const claimed = async () => Number(await CLAIMED_TILE_LIVE.run(redis, [this.claims, q.toKey(''), CLAIM_GRACE_MS, key])) === 1;
    return this.batchTiles > 1 ? (await claimed()) || (await keyed()) : (await keyed()) || (await claimed());
  }

  /** The job that owns a claimed tile, if any. */
  private async ownerOf(key: string): Promise<string | undefined> {
    return (await (await this.client()).hget(this.claims, key)) ?? undefined;
  }

  /** BullMQ's own command connection (the scripts here need no other). */
  private async client(): Promise<RedisClient> {
    return (await this.queue.getBackend().client) as unknown as RedisClient;
  }

  /** The job's BullMQ state, for tests and operators (the sweep needs only `exists`). */
  async state(key: string, lane: RenderLane): Promise<RenderJobState> {
    const s = await this.lane(lane).getJobState((await this.ownerOf(key)) ?? key);
    switch (s) {
      case 'waiting':
      case 'prioritized':
      case 'waiting-children':
        return 'waiting';
      case 'active':
      case 'completed':
      case 'failed':
      case 'delayed':
        return s;
      default:
        return 'unknown';
    }
  }

  /** Tile keys of the jobs workers hold right now, every tile of a batch (for fault tests and operators). */
  async activeKeys(): Promise<string[]> {
    const [a, b] = await Promise.all([this.queue.getActive(), this.heavy.getActive()]);
    return [...a, ...b].flatMap((j) => {
      const parsed = RenderJob.safeParse(j.data);
      return parsed.success ? tilesOf(parsed.data).map((t) => t.key) : [j.id ?? ''];
    });
  }

  /**
   * Renders waiting, both lanes, in tiles: what load shedding and tile:queued positions count. With
   * batch jobs, the claimed tiles (one hash length): tiles of queued jobs, plus the few of the jobs
   * running (at most batchTiles per render slot); jobs keyed by tile still queued from before a
   * change of RENDER_BATCH_TILES are not in it.
   */
  async depth(): Promise<number> {
    if (this.batchTiles > 1) {
      const redis = await this.client();
      const claimed = await redis.hlen(this.claims);
      // Once the hash is large enough for leaked claims to matter, every 20th reading also looks
      // over a page of claims for ones whose job is gone (the depth is read every 0.5-2 s per
      // process: ~100 commands per 10-40 s, the whole of a 100,000-tile queue in a few hours; a
      // leaked claim is also taken over as soon as its tile is asked for again). Below that, a small
      // hash would be scanned whole each time (Redis returns a small hash in one page).
      if (claimed >= this.pruneClaimsAbove && this.depthReads++ % 20 === 0) {
        this.pruneCursor = String(await PRUNE_CLAIMS.run(redis, [this.claims, this.queue.toKey(''), this.heavy.toKey(''), CLAIM_GRACE_MS, this.pruneCursor, 100]));
      }
      return claimed;
    }
    const [a, b] = await Promise.all([this.queue.getJobCountByTypes('waiting', 'prioritized'), this.heavy.getJobCountByTypes('waiting', 'prioritized')]);
    return a + b;
  }

  async counts(): Promise<Record<string, number>> {
    const [a, b] = await Promise.all([this.queue, this.heavy].map((q) => q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed')));
    return Object.fromEntries(Object.keys(a!).map((k) => [k, (a![k] ?? 0) + (b![k] ?? 0)]));
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.heavy.close()]);
  }
}

/** A job's tiles in render order: its own, then its batch. */
export function tilesOf(job: RenderJob): Array<{ key: string; tile: RenderJob['tile'] }> {
  return [{ key: job.key, tile: job.tile }, ...(job.batch ?? [])];
}
