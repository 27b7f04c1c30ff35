import { IngestEvent, type IngestState, type IngestStatusBody } from '@tilefarm/contracts';
import { JsonChannel, RedisScript, type RedisClient } from './redis';

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

  /** Registers a new ingest and takes the dataset's lock; refused while another ingest of it is unfinished. */
  async begin(jobId: string, dataset: string): Promise<BeginResult> {
    const [status, , , , lock] = this.keys(jobId, dataset);
    const holder = (await SCRIPTS.begin.run(this.redis, [lock!, status!, jobId, dataset, new Date().toISOString(), `${this.prefix}:ingest-status:`, ACTIVE_TTL_S])) as string;
    return holder === '' ? { ok: true } : { ok: false, holder };
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

  async get(jobId: string): Promise<IngestStatusBody | undefined> {
    const h = await this.redis.hgetall(this.status(jobId));
    if (!h.state || !h.dataset) return undefined;
    const body: IngestStatusBody = {
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

// KEYS: lock, status. ARGV: jobId, dataset, now, status key prefix, ttl. Returns '' or the holder.
const BEGIN = `
local holder = redis.call('GET', KEYS[1])
if holder then
  local st = redis.call('HGET', ARGV[4] .. holder, 'state')
  if st and st ~= 'completed' and st ~= 'failed' then return holder end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
redis.call('HSET', KEYS[2], 'dataset', ARGV[2], 'state', 'queued', 'done', 0, 'total', 0, 'units', 0, 'unitsDone', 0, 'createdAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return ''`;

export function ingestProgressChannel(prefix: string): string {
  return `${prefix}:ingest-progress`;
}

// Publishes the ingest's event (IngestEvent JSON) from its status hash.
const ANNOUNCE = `
local function announce(channel, jobId, key, state, code, message)
  local h = redis.call('HMGET', key, 'dataset', 'done', 'total', 'version')
  local ev = { jobId = jobId, dataset = h[1], done = tonumber(h[2] or '0'), total = tonumber(h[3] or '0'), state = state }
  if h[4] then ev.version = tonumber(h[4]) end
  if code then ev.code = code end
  if message then ev.message = message end
  redis.call('PUBLISH', channel, cjson.encode(ev))
end
`;

// KEYS: status. ARGV: state, now, channel, jobId. Returns the state after the call ('gone' if unknown).
const SET_STATE = `${ANNOUNCE}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'gone' end
if st == 'completed' or st == 'failed' then return st end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updatedAt', ARGV[2])
if st ~= ARGV[1] then announce(ARGV[3], ARGV[4], KEYS[1], 'running') end
return ARGV[1]`;

// KEYS: status, units, finished, lock, plan. ARGV: unit, unitDone, finished, now, ttl, jobId, channel.
const PROGRESS = `${ANNOUNCE}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'gone', 0, 0} end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if st == 'completed' or st == 'failed' then return {st, tonumber(redis.call('HGET', KEYS[1], 'done') or '0'), total} end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
local done
if new > old then
  redis.call('HSET', KEYS[2], ARGV[1], new)
  done = redis.call('HINCRBY', KEYS[1], 'done', new - old)
  announce(ARGV[7], ARGV[6], KEYS[1], 'running')
else
  done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
end
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[1], 'unitsDone', redis.call('SCARD', KEYS[3]))
end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[4])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('EXPIRE', KEYS[5], ARGV[5])
if redis.call('GET', KEYS[4]) == ARGV[6] then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return {st, done, total}`;

// KEYS: status, plan, units, finished, lock. ARGV: jobId, now, ttl, state, version, code, message, channel.
const END = `${ANNOUNCE}
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'completed' or st == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'updatedAt', ARGV[2])
if ARGV[4] == 'completed' then
  redis.call('HSET', KEYS[1], 'done', redis.call('HGET', KEYS[1], 'total'), 'unitsDone', redis.call('HGET', KEYS[1], 'units'), 'version', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'code', ARGV[6], 'message', ARGV[7])
end
if ARGV[4] == 'completed' then announce(ARGV[8], ARGV[1], KEYS[1], 'completed') else announce(ARGV[8], ARGV[1], KEYS[1], 'failed', ARGV[6], ARGV[7]) end
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1`;

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

const SCRIPTS = {
  begin: new RedisScript(BEGIN, 2),
  setState: new RedisScript(SET_STATE, 1),
  progress: new RedisScript(PROGRESS, 5),
  end: new RedisScript(END, 5),
};
