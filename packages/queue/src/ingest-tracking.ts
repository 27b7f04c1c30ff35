import { IngestEvent, type IngestState, type IngestStatusBody } from '@tilefarm/contracts';
import { JsonChannel } from './json-channel';
import type { RedisClient } from './redis-connection';
import { RedisScript } from './redis-script';

/** Keys of a running ingest live this long past the last sign of life (refreshed by progress). */
const ACTIVE_TTL_S = 6 * 3600;
/** Finished ingests stay readable (GET /v1/ingests/:jobId, late watchers) for a day. */
const FINISHED_TTL_S = 24 * 3600;

export type BeginResult = { ok: true } | { ok: false; holder: string };

export interface UnitProgress {
  state: IngestState | 'gone';
  done: number;
  total: number;
}

/**
 * The state of every queued ingest, in Redis, shared by API, gateways and workers: a status hash
 * per job (what GET /v1/ingests/:jobId and late socket watchers read), the plan the workers share,
 * per-unit tile counts (so a retried unit never counts twice and progress never goes back), and a
 * lock per dataset id: two ingests of one id would reserve the same version, so only one runs.
 * Every change that a watcher should see is published by the same Redis script that makes it
 * (on `IngestProgressBus`'s channel), so events arrive in counter order: `done` never goes back,
 * whichever worker sent them, and `completed`/`failed` comes after the last progress.
 */
export class IngestTracker {
  private readonly channel: string;

  constructor(
    private readonly prefix: string,
    private readonly redis: RedisClient,
  ) {
    this.channel = ingestProgressChannel(prefix);
  }

  // Not `${prefix}:ingest:${jobId}`: that is BullMQ's own hash of the job with that id.
  private status(jobId: string): string {
    return `${this.prefix}:ingest-status:${jobId}`;
  }
  private keys(jobId: string, dataset: string): string[] {
    const s = this.status(jobId);
    return [s, `${s}:plan`, `${s}:units`, `${s}:finished`, `${this.prefix}:ingest-lock:${dataset}`];
  }

  /**
   * Registers a new ingest for `tenant` and takes the dataset's lock; refused while another ingest
   * of it is unfinished. Every writer of a dataset (queued ingests, the CLI, deletion) takes this
   * lock, so two never work on one id at once. `ttlS` bounds how long a holder that stops
   * reporting (a killed CLI) keeps it.
   */
  async begin(jobId: string, dataset: string, tenant: string, ttlS = ACTIVE_TTL_S): Promise<BeginResult> {
    const [status, , , , lock] = this.keys(jobId, dataset);
    const holder = (await SCRIPTS.begin.run(this.redis, [lock!, status!, jobId, dataset, new Date().toISOString(), `${this.prefix}:ingest-status:`, ttlS, tenant])) as string;
    return holder === '' ? { ok: true } : { ok: false, holder };
  }

  /** Keeps a holder's lock and status alive for another `ttlS` (a long CLI ingest calls this now and then). */
  async heartbeat(jobId: string, dataset: string, ttlS: number): Promise<void> {
    const [status, , , , lock] = this.keys(jobId, dataset);
    await SCRIPTS.heartbeat.run(this.redis, [lock!, status!, jobId, ttlS]);
  }

  /**
   * Reserves the next version of `dataset`, atomically for every writer: one more than both the
   * last one reserved here and `floor` (the highest version storage knows), so two ingests never
   * write one version even if Redis lost its counter.
   */
  async reserveVersion(dataset: string, floor: number): Promise<number> {
    return Number(await SCRIPTS.reserveVersion.run(this.redis, [`${this.prefix}:dataset-version:${dataset}`, floor]));
  }

  /** Moves a live ingest to `planning`, `running` or `publishing` (never out of a final state). */
  async setState(jobId: string, state: 'planning' | 'running' | 'publishing'): Promise<IngestState | 'gone'> {
    return (await SCRIPTS.setState.run(this.redis, [this.status(jobId), state, new Date().toISOString(), this.channel, jobId])) as IngestState | 'gone';
  }

  /** Stores the plan (JSON) for every worker, with its totals and version (the state stays `planning`). */
  async planned(jobId: string, dataset: string, plan: string, totals: { total: number; units: number; version: number; warnings?: string[] }): Promise<void> {
    const [status, planKey] = this.keys(jobId, dataset);
    const warnings = totals.warnings?.length ? { warnings: JSON.stringify(totals.warnings.map((w) => w.slice(0, 1000)).slice(0, 20)) } : {};
    await this.redis
      .multi()
      .set(planKey!, plan, 'EX', ACTIVE_TTL_S)
      .hset(status!, { total: totals.total, units: totals.units, version: totals.version, ...warnings, updatedAt: new Date().toISOString() })
      .exec();
  }

  async plan(jobId: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.status(jobId)}:plan`)) ?? undefined;
  }

  /**
   * Records that `unit` has written `unitDone` tiles (a retry restarting at 0 changes nothing
   * until it passes its earlier count) and, with `finished`, that the unit is complete. Returns
   * the ingest's state and totals, so a unit can stop when the ingest failed elsewhere.
   */
  async unitProgress(jobId: string, dataset: string, unit: number, unitDone: number, finished = false): Promise<UnitProgress> {
    const [status, planKey, units, finishedKey, lock] = this.keys(jobId, dataset);
    const [state, done, total] = (await SCRIPTS.progress.run(this.redis, [
      status!,
      units!,
      finishedKey!,
      lock!,
      planKey!,
      String(unit),
      unitDone,
      finished ? '1' : '0',
      new Date().toISOString(),
      ACTIVE_TTL_S,
      jobId,
      this.channel,
    ])) as [string, number, number];
    return { state: state as UnitProgress['state'], done, total };
  }

  /** Marks the ingest completed and frees the dataset; false if it had already ended. */
  async complete(jobId: string, dataset: string, version: number): Promise<boolean> {
    return this.end(jobId, dataset, ['completed', String(version), '', '']);
  }

  /** Marks the ingest failed and frees the dataset; false if it had already ended (the first failure wins). */
  async fail(jobId: string, dataset: string, code: string, message: string): Promise<boolean> {
    return this.end(jobId, dataset, ['failed', '', code, message.slice(0, 2000)]);
  }

  /** The job's status, and the tenant it runs for (not part of the public body). */
  async get(jobId: string): Promise<(IngestStatusBody & { tenant: string | undefined }) | undefined> {
    const h = await this.redis.hgetall(this.status(jobId));
    if (!h.state || !h.dataset) return undefined;
    const body: IngestStatusBody & { tenant: string | undefined } = {
      tenant: h.tenant,
      jobId,
      dataset: h.dataset,
      state: h.state as IngestState,
      done: Number(h.done ?? 0),
      total: Number(h.total ?? 0),
      unitsDone: Number(h.unitsDone ?? 0),
      units: Number(h.units ?? 0),
      createdAt: h.createdAt ?? '',
      updatedAt: h.updatedAt ?? '',
    };
    if (h.version) body.version = Number(h.version);
    if (h.warnings) body.warnings = JSON.parse(h.warnings) as string[];
    if (h.state === 'failed') body.error = { code: h.code ?? 'internal', message: h.message ?? '' };
    return body;
  }

  private async end(jobId: string, dataset: string, args: [string, string, string, string]): Promise<boolean> {
    const [status, planKey, units, finishedKey, lock] = this.keys(jobId, dataset);
    const changed = await SCRIPTS.end.run(this.redis, [status!, planKey!, units!, finishedKey!, lock!, jobId, new Date().toISOString(), FINISHED_TTL_S, ...args, this.channel]);
    return changed === 1;
  }
}

/** The socket event for a status: what a watcher is sent when it starts watching. */
export function ingestEventOf(s: IngestStatusBody): IngestEvent {
  const state = s.state === 'completed' || s.state === 'failed' ? s.state : 'running';
  return {
    jobId: s.jobId,
    dataset: s.dataset,
    done: s.done,
    total: s.total,
    state,
    ...(s.version !== undefined ? { version: s.version } : {}),
    ...(s.error ? { code: s.error.code, message: s.error.message } : {}),
  };
}

export function ingestProgressChannel(prefix: string): string {
  return `${prefix}:ingest-progress`;
}

/**
 * Ingest progress fans out from workers to every gateway over Redis pub/sub (`IngestTracker`
 * publishes). At-most-once like all pub/sub: a watcher that missed events still converges, since
 * each event carries the totals and a new watcher is sent the current status first.
 */
export class IngestProgressBus {
  private readonly channel: JsonChannel<IngestEvent>;

  constructor(prefix: string, subscriber: RedisClient) {
    this.channel = new JsonChannel(ingestProgressChannel(prefix), IngestEvent, subscriber);
  }

  /** A malformed event from another process version is dropped; the next one carries the totals. */
  async subscribe(listener: (event: IngestEvent) => void): Promise<void> {
    await this.channel.subscribe(listener);
  }
}

// Every script but `begin` publishes the ingest's event from the status hash (ingest-announce.lua).
const SCRIPTS = {
  begin: RedisScript.fromFile('ingest-begin.keys-2.lua'),
  heartbeat: RedisScript.fromFile('ingest-heartbeat.keys-2.lua'),
  reserveVersion: RedisScript.fromFile('dataset-version-reserve.keys-1.lua'),
  setState: RedisScript.fromFile('ingest-set-state.keys-1.lua', 'ingest-announce.lua'),
  progress: RedisScript.fromFile('ingest-progress.keys-5.lua', 'ingest-announce.lua'),
  end: RedisScript.fromFile('ingest-end.keys-5.lua', 'ingest-announce.lua'),
};
